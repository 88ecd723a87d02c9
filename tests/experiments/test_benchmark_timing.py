"""The benchmark helpers: ``--threads`` parsing and single-threaded XLA set before JAX."""

import subprocess
import sys

import pytest

from experiments.benchmarks import timing


@pytest.mark.parametrize(
    ("argv", "threads"),
    [(["bench"], None), (["bench", "--threads", "1"], 1), (["bench", "--threads=4"], 4),
     (["bench", "--quick", "--threads", "2", "--append"], 2), (["bench", "--threads"], None)],
)
def test_threads_from_argv(argv, threads):
    assert timing.threads_from_argv(argv) == threads


def test_single_thread_flags_only_for_one_thread_and_only_once(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    assert not timing.single_thread_xla_if_asked(["bench", "--threads", "2"])
    assert timing.SINGLE_THREAD_XLA_FLAGS not in timing.os.environ["XLA_FLAGS"]
    assert timing.single_thread_xla_if_asked(["bench", "--threads", "1"])
    assert timing.single_thread_xla_if_asked(["bench", "--threads=1"])
    flags = timing.os.environ["XLA_FLAGS"]
    assert flags == ("--xla_force_host_platform_device_count=8 "
                     + timing.SINGLE_THREAD_XLA_FLAGS)


def test_importing_timing_does_not_start_jax():
    code = ("import sys, experiments.benchmarks.timing as t; "
            "assert 'jax' not in sys.modules, 'timing imported jax'")
    subprocess.run([sys.executable, "-c", code], check=True)
