"""One process of the multi-process training test (started by test_multiprocess.py).

    python mp_train_worker.py --out params.npz --process-id i --num-processes n --port p
        [--workdir dir --stop-at k]

Trains a small BatchNorm + dropout MLP with jdrop.train on a fixed global data set, each
process feeding its own rows of every global batch, and (on process 0) saves the final
parameters, batch statistics and validation losses to ``--out``. With ``--workdir`` and
``--stop-at`` it stops after ``k`` steps and resumes from the checkpoint. The test imports
:func:`run_training` to compute the single-process reference in its own process.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jdrop
from jdrop.train import TrainConfig, classification_loss, make_optimizer, train

STEPS_PER_EPOCH = 4
EPOCHS = 3
BATCH = 16


class Net(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(4, 16, rngs=rngs)
        self.bn = nnx.BatchNorm(16, momentum=0.5, rngs=rngs)
        self.l2 = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x, key=None, train=False):
        h = jax.nn.relu(self.bn(self.l1(x), use_running_average=not train))
        h = jdrop.dropout(key, h, 0.3, deterministic=key is None)
        return self.l2(h)


def run_training(*, workdir=None, stop_at=None, mesh=None) -> dict[str, np.ndarray]:
    """Trains (stopping at ``stop_at`` and resuming, if given); returns the final arrays."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * STEPS_PER_EPOCH, 4)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(4, 3)), axis=1).astype(np.int32)
    pid, count = jax.process_index(), jax.process_count()
    rows = BATCH // count

    def batches_fn(epoch, start_step):
        order = np.random.default_rng([0, epoch]).permutation(len(x))
        for step in range(start_step, STEPS_PER_EPOCH):
            mine = order[step * BATCH : (step + 1) * BATCH][pid * rows : (pid + 1) * rows]
            yield {"inputs": x[mine], "labels": y[mine]}

    tx = make_optimizer("adam", 1e-2)
    loss_fn = classification_loss(train_flag=True)  # the same objects: compiled once

    def run(**extra):
        return train(
            Net(nnx.Rngs(0)),
            tx,
            loss_fn,
            batches_fn,
            TrainConfig(num_epochs=EPOCHS, l2=1e-3, progress=False, log_every=1, **extra),
            workdir=workdir,
            eval_sets={"val": lambda: batches_fn(0, 0)},
            mesh=mesh,
        )

    if stop_at is not None:
        stopped = run(max_steps=stop_at)
        assert stopped.step == stop_at, stopped.step
    result = run()
    assert result.step == EPOCHS * STEPS_PER_EPOCH, result.step
    state = jax.tree.map(jnp.asarray, nnx.state(result.model))
    flat = {
        jax.tree_util.keystr(path): np.asarray(value)
        for path, value in jax.tree_util.tree_leaves_with_path(state)
    }
    flat["val_loss"] = np.asarray([r["loss"] for r in result.history if r["split"] == "val"])
    return flat


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--stop-at", type=int, default=None)
    args = parser.parse_args()

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args.port}",
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=60,
    )
    arrays = run_training(workdir=args.workdir, stop_at=args.stop_at)
    if jax.process_index() == 0:
        np.savez(args.out, **arrays)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
