"""A run stopped at any step and resumed from its workdir ends bitwise where an unstopped
run ends: parameters, BatchNorm statistics, optimiser state, key, early stopping, logs."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.train import (
    Checkpointer,
    EarlyStopping,
    TrainConfig,
    classification_loss,
    make_optimizer,
    read_metrics,
    train,
)

EPOCHS = 3


def _classification_run(helpers):
    data = helpers.make_classification_data()
    val = helpers.make_classification_data(seed=1)
    total = EPOCHS * helpers.STEPS_PER_EPOCH
    return dict(
        make_model=lambda: helpers.BatchNormMLP(rngs=nnx.Rngs(0)),
        tx=make_optimizer("adam", 1e-2, schedule="cosine", total_steps=total, warmup_steps=2),
        loss_fn=classification_loss(train_flag=True),
        batches_fn=helpers.make_batches_fn(data),
        kwargs=dict(eval_sets={"val": lambda: helpers.make_batches_fn(val)(0, 0)}),
        config=dict(l2=1e-3, l1=1e-4),
    )


def _lm_run(helpers):
    return dict(
        make_model=lambda: helpers.TinyRNN(rngs=nnx.Rngs(0)),
        tx=make_optimizer("sgd", 0.5, momentum=0.9),
        loss_fn=helpers.lm_loss,
        batches_fn=helpers.make_lm_data(),
        kwargs=dict(init_carry=lambda: np.zeros((helpers.BATCH, 8), np.float32)),
        config={},
    )


def _train(run, workdir, **config):
    return train(
        run["make_model"](),
        run["tx"],
        run["loss_fn"],
        run["batches_fn"],
        TrainConfig(num_epochs=EPOCHS, progress=False, log_every=1, **run["config"], **config),
        workdir=workdir,
        **run["kwargs"],
    )


@pytest.mark.parametrize("task", ["classification", "lm"])
@pytest.mark.parametrize("stop_after", [6])  # mid-epoch 1 (4 steps per epoch)
def test_resume_mid_epoch_is_bitwise(helpers, tmp_path, task, stop_after):
    run = (_classification_run if task == "classification" else _lm_run)(helpers)
    straight = _train(run, tmp_path / "a")
    first = _train(run, tmp_path / "b", max_steps=stop_after)
    assert first.step == stop_after and first.epoch == 1
    # Mid-epoch, the LM's carry (the RNN state) is saved with the rest.
    has_carry = (tmp_path / "b" / "checkpoints" / str(stop_after) / "carry").is_dir()
    assert has_carry == (task == "lm")
    resumed = _train(run, tmp_path / "b")
    assert resumed.step == straight.step == EPOCHS * helpers.STEPS_PER_EPOCH
    helpers.assert_trees_equal(resumed.state, straight.state)
    # The stopped run really is different from the finished one.
    assert not np.array_equal(first.state.step, straight.state.step)
    pairs = zip(
        jax.tree.leaves(first.state.params), jax.tree.leaves(straight.state.params), strict=True
    )
    assert not any(np.array_equal(a, b) for a, b in pairs)
    # The log has every step once, and the same values as the unstopped run's log.
    log_a = read_metrics(tmp_path / "a" / "metrics.jsonl")
    log_b = read_metrics(tmp_path / "b" / "metrics.jsonl")
    assert [(r["step"], r["split"]) for r in log_b] == [(r["step"], r["split"]) for r in log_a]
    assert log_b == log_a


def test_resume_with_early_stopping_and_best_model(helpers, tmp_path):
    """Early stopping resumes its state: the stopped-and-resumed run stops at the same
    epoch, with the same best value and the same best parameters."""
    x = np.abs(np.random.default_rng(0).normal(size=(16, 2))).astype(np.float32)
    batch = {"inputs": x}

    def loss_fn(model, batch, key, carry):  # pushes the output up: the val metric worsens
        out = model(batch["inputs"])
        return -jnp.mean(out), ({}, carry)

    def batches_fn(epoch, start):
        return [batch, batch][start:]

    config = dict(
        num_epochs=10,
        progress=False,
        early_stopping=EarlyStopping("loss", split="val", mode="max", patience=2),
        restore_best=True,
    )

    def run(workdir, **extra):
        return train(
            nnx.Linear(2, 1, rngs=nnx.Rngs(0)),
            make_optimizer("sgd", 0.1),
            loss_fn,
            batches_fn,
            TrainConfig(**config, **extra),
            workdir=workdir,
            eval_sets={"val": lambda: [batch]},
        )

    straight = run(tmp_path / "a")
    # val "loss" is -mean(out), higher is better in mode "max": it falls every epoch, so
    # the first evaluation is the best and training stops after 2 more.
    assert straight.stopped_early and straight.epoch == 3
    assert straight.early_stopping.best_epoch == 0
    stopped = run(tmp_path / "b", max_steps=3)
    assert not stopped.stopped_early and stopped.step == 3
    resumed = run(tmp_path / "b")
    assert resumed.stopped_early and resumed.epoch == straight.epoch
    assert resumed.early_stopping == straight.early_stopping
    helpers.assert_trees_equal(resumed.state, straight.state)
    helpers.assert_trees_equal(nnx.state(resumed.model), nnx.state(straight.model))
    # The returned model is the best (epoch 0) one, not the last.
    assert not np.array_equal(resumed.model.kernel.value, resumed.state.params["kernel"].value)
    # A finished run resumes to a no-op.
    again = run(tmp_path / "b")
    assert again.step == straight.step and again.history == []
    helpers.assert_trees_equal(again.state, straight.state)


def test_periodic_checkpoints_survive_donation(helpers, tmp_path):
    """Checkpoint 6 is written while training goes on (the state it was saved from is
    donated to step 7): it still holds exactly the state after 6 steps."""
    data = helpers.make_classification_data()
    tx, loss_fn = make_optimizer("sgd", 0.1, momentum=0.5), classification_loss()

    def run(workdir=None, **config):
        return train(
            helpers.DropoutMLP(rngs=nnx.Rngs(0)),
            tx,
            loss_fn,
            helpers.make_batches_fn(data),
            TrainConfig(num_epochs=2, progress=False, **config),
            workdir=workdir,
        )

    result = run(tmp_path, checkpoint_every=3, max_to_keep=2)
    steps = sorted(int(p) for p in os.listdir(tmp_path / "checkpoints") if p.isdigit())
    assert result.step == 8 and steps == [6, 8]
    at_six = run(max_steps=6).state
    restored, meta, _, _ = Checkpointer(tmp_path / "checkpoints").restore(result.state, step=6)
    assert (meta["epoch"], meta["step_in_epoch"], meta["step"]) == (1, 2, 6)
    helpers.assert_trees_equal(restored, at_six)


def test_checkpointer_round_trips_typed_keys_and_shardings(tmp_path):
    from jdrop.train import make_mesh, replicate

    mesh = make_mesh()
    tree = replicate({"key": jax.random.key(3), "w": np.arange(4, dtype=np.float32)}, mesh)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(5, tree, meta={"epoch": 2, "note": "x"})
    ckpt.close()
    target = replicate({"key": jax.random.key(0), "w": np.zeros(4, np.float32)}, mesh)
    restored, meta, carry, best = Checkpointer(tmp_path).restore(target)
    assert meta["epoch"] == 2 and meta["note"] == "x" and carry is None and best is None
    assert np.array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(tree["key"]))
    assert np.array_equal(restored["w"], tree["w"])
    assert restored["w"].sharding == target["w"].sharding


def test_restore_without_checkpoint_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Checkpointer(tmp_path).restore({"w": jnp.zeros(2)})
