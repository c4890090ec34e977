"""Test set-up: 4 logical CPU devices, and the compiled library built once."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Nothing in a property test may depend on how fast the machine is: no
# per-example deadline, and no "data generation too slow" health check
# (both measure wall time, which a loaded machine stretches many times).
# In CI the property tests use a fixed example sequence (reproducible
# results); locally they keep exploring new examples on every run.
_untimed = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("untimed", **_untimed)
settings.register_profile("ci", derandomize=True, print_blob=True,
                          **_untimed)
settings.load_profile("ci" if os.environ.get("CI") else "untimed")

# Must happen before TensorFlow initialises its devices.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 4)


@pytest.fixture(scope="session")
def compiled():
    """The loaded op module; fails (does not skip) when it cannot build."""
    from tf_sparsesign.ops import _library

    lib = _library.load()
    if lib is None:
        pytest.fail("compiled op library unavailable: "
                    f"{_library.load_error()}")
    return lib
