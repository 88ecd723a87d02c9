"""Test set-up: eight host CPU devices, cheap XLA compilation and strict dtype promotion."""

import os

# Eight host devices; and XLA's cheap compilation, because the suite is dominated by
# compiling thousands of small programs, not by running them (tests check values, never
# speed): about 15% less CPU time for the whole suite. Subprocesses that compare bits with
# this process (tests/train/test_multiprocess.py) pass these flags on.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
    + " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
    """A fresh typed PRNG key; tests derive everything else from it."""
    return jax.random.key(0)
