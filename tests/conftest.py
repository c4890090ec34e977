"""Test set-up: 4 logical CPU devices, and the compiled library built once."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Must happen before TensorFlow initialises its devices.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 4)


@pytest.fixture(scope="session")
def compiled():
    """The loaded op module; fails (does not skip) when it cannot build."""
    from tf_sparsesign import _library

    lib = _library.load()
    if lib is None:
        pytest.fail("compiled op library unavailable: "
                    f"{_library.load_error()}")
    return lib
