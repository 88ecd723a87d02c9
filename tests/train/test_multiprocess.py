"""Two processes (jax.distributed over gloo on 127.0.0.1) train like one process.

Each of two processes (one CPU device each) feeds its own rows of every global batch; the
parameters and batch statistics at the end are bitwise those of one process training on
a two-device mesh with the whole batch, even though the two-process run stops after 6
steps, checkpoints with orbax from both processes, and resumes. Two devices make the
all-reduce exact: a sum of two partial sums is the same in either order. (With 2 x 2
devices against 1 x 4 the reduction order differs, and the results agree only to float32
rounding, which Adam then amplifies for parameters whose gradient is rounding noise, such
as a bias followed by BatchNorm.)
"""

import importlib.util
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from jdrop.train import make_mesh

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp_train_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(WORKER)))
TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args):
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    # One device each, and otherwise this process's XLA flags (conftest's compilation
    # settings), so that workers and the in-process reference compile alike.
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    env["XLA_FLAGS"] = " ".join([*flags, "--xla_force_host_platform_device_count=1"])
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, WORKER, *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_all(procs):
    """Waits for every process; kills them all if one hangs, so a hang fails the test."""
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.communicate()
        raise AssertionError(f"a training process did not finish within {TIMEOUT_S} s") from None
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out[-4000:]


def _worker_module():
    spec = importlib.util.spec_from_file_location("mp_train_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_two_processes_match_one_process_bitwise(tmp_path):
    port, out = _free_port(), tmp_path / "multi.npz"
    common = ["--num-processes", "2", "--port", str(port), "--out", str(out)]
    resume = ["--workdir", str(tmp_path / "workdir"), "--stop-at", "6"]
    procs = [_start(["--process-id", str(i), *common, *resume]) for i in range(2)]
    try:
        # The reference, while they run: this process, a two-device mesh, no stop.
        single = _worker_module().run_training(mesh=make_mesh(jax.devices()[:2]))
    finally:
        _wait_all(procs)

    multi = np.load(out)
    names = sorted(n for n in single if n != "val_loss")
    assert names == sorted(n for n in multi.files if n != "val_loss")
    assert any("mean" in n for n in names) and any("kernel" in n for n in names)
    for name in names:
        assert np.array_equal(single[name], multi[name]), name
    # The resumed run evaluated after epochs 1 and 2; the single run after 0, 1 and 2.
    assert len(single["val_loss"]) == 3
    assert np.array_equal(single["val_loss"][1:], multi["val_loss"])
    assert sorted(os.listdir(tmp_path / "workdir" / "checkpoints")) == ["12", "6"]
