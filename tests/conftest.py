"""Test set-up: eight host CPU devices, cheap XLA compilation and strict dtype promotion."""

import os
import subprocess
import sys

# XLA:CPU's older loop emitters compile a small program in about two thirds of the time
# of its MLIR fusion emitters (the doctests of jdrop.uncertainty._summaries: 17.4 s -> 11.4 s;
# the language-model smoke run: 38 s -> 30 s). XLA aborts the process on a flag it does not
# know, so a jaxlib that dropped this one is asked first, once (the answer is passed on to
# the xdist workers and subprocesses through the environment).
FAST_EMITTERS = "--xla_cpu_use_fusion_emitters=false"
_PROBE = "JDROP_TESTS_FAST_EMITTERS"


def _xla_accepts(flag: str) -> bool:
    if _PROBE not in os.environ:
        probe = "import jax; jax.numpy.zeros(1).block_until_ready()"
        env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
        try:
            done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                                  timeout=300, check=False)
        except subprocess.TimeoutExpired:
            done = None
        os.environ[_PROBE] = "1" if done is not None and done.returncode == 0 else "0"
    return os.environ[_PROBE] == "1"


# Eight host devices; and XLA's cheap compilation, because the suite is dominated by
# compiling thousands of small programs, not by running them (tests check values, never
# speed): about 15% less CPU time for the whole suite from the optimisation level, a third
# less again from the emitters. Subprocesses that compare bits with this process
# (tests/train/test_multiprocess.py) pass these flags on.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
    + " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    + (" " + FAST_EMITTERS if _xla_accepts(FAST_EMITTERS) else "")
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def key():
    """A fresh typed PRNG key; tests derive everything else from it."""
    return jax.random.key(0)
