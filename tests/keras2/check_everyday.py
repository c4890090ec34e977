"""Keras 2 (tf_keras): the everyday features under SparseSignStrategy (the
checks are in tests/everyday.py, shared with Keras 3; the .keras round trip
is in check_saving.py)."""

import pytest
import tf_keras

import everyday

pytestmark = pytest.mark.filterwarnings("ignore:.*more than signSGD-MV")

K = tf_keras


def test_mixed_float16():
    everyday.check_mixed_float16(K)


def test_learning_rate_schedule():
    everyday.check_learning_rate_schedule(K)


def test_adam_clipnorm_clips_the_voted_update():
    everyday.check_adam_clipnorm(K, clip_before_vote=False)


def test_embedding():
    everyday.check_embedding(K)


def test_batchnorm_dropout_validation_evaluate_predict():
    everyday.check_batchnorm_dropout_validation(K)


def test_dataset_steps_per_execution():
    everyday.check_dataset_steps_per_execution(K)


def test_layer_without_gradient():
    everyday.check_layer_without_gradient(K)


def test_checkpoint_early_stopping_csv_logger(tmp_path):
    everyday.check_callbacks(K, tmp_path)


def test_custom_train_step():
    everyday.check_custom_train_step(K)


def test_tensorboard(tmp_path):
    everyday.check_tensorboard(K, tmp_path)
