"""Keras 3: the everyday features under SparseSignStrategy (the checks are
in tests/everyday.py; tests/keras2/check_everyday.py runs them for
tf_keras)."""

import keras
import pytest

import everyday

pytestmark = pytest.mark.filterwarnings("ignore:.*more than signSGD-MV")


def test_mixed_float16():
    everyday.check_mixed_float16(keras)


def test_learning_rate_schedule():
    everyday.check_learning_rate_schedule(keras)


def test_adam_clipnorm_clips_each_replica_before_the_vote():
    everyday.check_adam_clipnorm(keras, clip_before_vote=True)


def test_embedding():
    everyday.check_embedding(keras)


def test_batchnorm_dropout_validation_evaluate_predict():
    everyday.check_batchnorm_dropout_validation(keras)


def test_dataset_steps_per_execution():
    everyday.check_dataset_steps_per_execution(keras)


def test_layer_without_gradient():
    everyday.check_layer_without_gradient(keras)


def test_checkpoint_early_stopping_csv_logger(tmp_path):
    everyday.check_callbacks(keras, tmp_path)


def test_custom_train_step():
    everyday.check_custom_train_step(keras)


def test_keras_file_round_trip_then_more_training(tmp_path):
    everyday.check_keras_file_round_trip(keras, tmp_path)


def test_tensorboard_from_the_readme_install(tmp_path):
    everyday.check_tensorboard(keras, tmp_path)
