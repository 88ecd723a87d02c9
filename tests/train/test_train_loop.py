"""The training loop: learning, logging, sharding, carry, penalties, early stopping."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jdrop.train import (
    EarlyStopping,
    TrainConfig,
    classification_loss,
    evaluate,
    global_batch,
    make_mesh,
    make_optimizer,
    read_metrics,
    train,
)

SGD = make_optimizer("sgd", 0.1)


def test_classification_learns_logs_and_evaluates(helpers, tmp_path):
    data = helpers.make_classification_data()
    val = helpers.make_classification_data(seed=1)
    loss_fn = classification_loss()
    model = helpers.DropoutMLP(rngs=nnx.Rngs(0))
    val_batches = lambda: helpers.make_batches_fn(val)(0, 0)
    before = evaluate(model, loss_fn, val_batches())
    result = train(
        model,
        make_optimizer("adam", 3e-2),
        loss_fn,
        helpers.make_batches_fn(data),
        TrainConfig(num_epochs=4, log_every=3, progress=False),
        workdir=tmp_path,
        eval_sets={"val": val_batches},
    )
    after = evaluate(result.model, loss_fn, val_batches())
    assert after["loss"] < 0.8 * before["loss"]
    assert after["accuracy"] > before["accuracy"]
    # The caller's model is not changed.
    assert evaluate(model, loss_fn, val_batches()) == before
    log = read_metrics(tmp_path / "metrics.jsonl")
    assert log == result.history
    # Train records every 3 steps and at each epoch's end; val records at each epoch's end.
    steps = [(r["step"], r["epoch"], r["split"]) for r in log]
    expected = []
    for epoch in range(4):
        for step in range(4 * epoch + 1, 4 * epoch + 5):
            if step % 3 == 0 or step == 4 * epoch + 4:
                expected.append((step, epoch, "train"))
        expected.append((4 * epoch + 4, epoch, "val"))
    assert steps == expected
    assert set(log[0]) == {"step", "epoch", "split", "loss", "accuracy"}
    # The last val record is the final model's evaluation.
    assert log[-1]["loss"] == pytest.approx(after["loss"], rel=1e-6)


def test_steps_compile_once(helpers):
    """One trace of the training step and one of the evaluation for a whole run."""
    traces = {"train": 0, "eval": 0}
    base = classification_loss()

    def loss_fn(model, batch, key, carry):
        traces["eval" if key is None else "train"] += 1
        return base(model, batch, key, carry)

    data = helpers.make_classification_data()
    result = train(
        helpers.DropoutMLP(rngs=nnx.Rngs(0)),
        SGD,
        loss_fn,
        helpers.make_batches_fn(data),
        TrainConfig(num_epochs=3, progress=False),
        eval_sets={"val": lambda: helpers.make_batches_fn(data)(0, 0)},
    )
    assert result.step == 12
    assert traces == {"train": 1, "eval": 1}


def test_batch_is_sharded_and_state_replicated(helpers):
    mesh = make_mesh()
    batch = global_batch({"x": np.arange(32, dtype=np.float32).reshape(16, 2)}, mesh)["x"]
    assert len(batch.addressable_shards) == 8
    assert {s.data.shape for s in batch.addressable_shards} == {(2, 2)}
    data = helpers.make_classification_data()
    result = train(
        helpers.DropoutMLP(rngs=nnx.Rngs(0)),
        SGD,
        classification_loss(),
        helpers.make_batches_fn(data),
        TrainConfig(progress=False),
    )
    for leaf in jax.tree.leaves(result.state):
        assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 8
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        global_batch({"x": np.zeros((12, 2), np.float32)}, mesh)


def test_batchnorm_statistics_are_trained_and_used(helpers):
    data = helpers.make_classification_data()
    model = helpers.BatchNormMLP(rngs=nnx.Rngs(0))
    result = train(
        model,
        SGD,
        classification_loss(train_flag=True),
        helpers.make_batches_fn(data),
        TrainConfig(num_epochs=2, progress=False),
    )
    mean = np.asarray(result.model.bn.mean.value)
    assert not np.allclose(mean, 0.0)
    assert np.array_equal(np.asarray(model.bn.mean.value), np.zeros_like(mean))
    # key=None evaluates in inference mode: the running statistics, so the output of one
    # example does not depend on the rest of the batch.
    x = data["inputs"][:8]
    full = result.model(jnp.asarray(x))
    alone = result.model(jnp.asarray(x[:1]))
    np.testing.assert_allclose(full[:1], alone, rtol=1e-5, atol=1e-6)


def test_carry_is_threaded_and_reset_each_epoch(helpers):
    """The carry each step receives is what the previous step returned; epochs restart
    from init_carry()."""
    data = helpers.make_classification_data()
    base = classification_loss()
    seen_sharding = []

    def loss_fn(model, batch, key, carry):
        loss, (metrics, _) = base(model, batch, key, None)
        seen_sharding.append(carry["count"].shape)
        metrics = dict(metrics, carry_in=jnp.mean(carry["count"]))
        return loss, (metrics, {"count": carry["count"] + np.float32(1)})

    result = train(
        helpers.DropoutMLP(rngs=nnx.Rngs(0)),
        SGD,
        loss_fn,
        helpers.make_batches_fn(data),
        TrainConfig(num_epochs=2, log_every=1, progress=False),
        init_carry=lambda: {"count": np.zeros(16, np.float32)},
    )
    carried = [r["carry_in"] for r in result.history]
    assert carried == [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]
    assert seen_sharding == [(16,)]  # traced once, with the global shape


def test_l2_penalty_decays_kernels_only(helpers):
    """With a zero data loss, SGD on l2/2 * |W|^2 multiplies kernels by (1 - lr * l2)
    each step and leaves biases alone; the logged penalty is l2/2 * |W|^2."""
    data = helpers.make_classification_data()
    model = helpers.DropoutMLP(rngs=nnx.Rngs(0))
    kernels = [np.asarray(model.l1.kernel.value), np.asarray(model.l2.kernel.value)]

    def zero_loss(model, batch, key, carry):
        return jnp.sum(model(batch["inputs"], key=key)) * np.float32(0), ({}, carry)

    result = train(
        model,
        optax.sgd(0.5),
        zero_loss,
        helpers.make_batches_fn(data),
        TrainConfig(l2=0.2, log_every=1, progress=False),
    )
    steps = helpers.STEPS_PER_EPOCH
    factor = np.float32(1 - 0.5 * 0.2) ** steps
    np.testing.assert_allclose(result.model.l1.kernel.value, kernels[0] * factor, rtol=1e-5)
    np.testing.assert_allclose(result.model.l2.kernel.value, kernels[1] * factor, rtol=1e-5)
    assert np.array_equal(result.model.l1.bias.value, model.l1.bias.value)
    first = 0.5 * 0.2 * sum(float(np.sum(k.astype(np.float64) ** 2)) for k in kernels)
    assert result.history[0]["penalty"] == pytest.approx(first, rel=1e-5)


def test_l1_penalty_is_added(helpers):
    data = helpers.make_classification_data()
    model = helpers.DropoutMLP(rngs=nnx.Rngs(0))
    l1 = float(np.abs(model.l1.kernel.value).sum() + np.abs(model.l2.kernel.value).sum())
    result = train(
        model,
        SGD,
        classification_loss(),
        helpers.make_batches_fn(data),
        TrainConfig(l1=0.01, log_every=1, progress=False),
    )
    assert result.history[0]["penalty"] == pytest.approx(0.01 * l1, rel=1e-5)


def test_early_stopping_stops_and_restores_best(helpers):
    x = np.abs(np.random.default_rng(0).normal(size=(16, 2))).astype(np.float32)
    batch = {"inputs": x}

    def loss_fn(model, batch, key, carry):  # the output grows, so the val metric falls
        return -jnp.mean(model(batch["inputs"])), ({}, carry)

    result = train(
        nnx.Linear(2, 1, rngs=nnx.Rngs(0)),
        SGD,
        loss_fn,
        lambda epoch, start: [batch][start:],
        TrainConfig(
            num_epochs=20,
            progress=False,
            early_stopping=EarlyStopping("loss", mode="max", patience=3),
            restore_best=True,
        ),
        eval_sets={"val": lambda: [batch]},
    )
    assert result.stopped_early and result.epoch == 4 and result.step == 4
    assert result.early_stopping.best_epoch == 0 and result.early_stopping.bad_evals == 3
    best = evaluate(result.model, loss_fn, [batch])["loss"]
    assert best == pytest.approx(result.early_stopping.best, rel=1e-6)
    vals = [r["loss"] for r in result.history if r["split"] == "val"]
    assert vals[0] == pytest.approx(best) and all(v < vals[0] for v in vals[1:])


def test_max_steps_stops_mid_epoch(helpers):
    data = helpers.make_classification_data()
    result = train(
        helpers.DropoutMLP(rngs=nnx.Rngs(0)),
        SGD,
        classification_loss(),
        helpers.make_batches_fn(data),
        TrainConfig(num_epochs=3, max_steps=6, progress=False),
    )
    assert result.step == 6 and result.epoch == 1 and int(result.state.step) == 6


def test_progress_bar(helpers, capsys):
    data = helpers.make_classification_data()
    train(
        helpers.DropoutMLP(rngs=nnx.Rngs(0)),
        SGD,
        classification_loss(),
        helpers.make_batches_fn(data),
        TrainConfig(num_epochs=1, log_every=2, progress=True),
    )
    err = capsys.readouterr().err
    assert "epoch 0" in err and "4step" in err.replace(" ", "") and "accuracy=" in err


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_epochs", 0, "num_epochs must be >= 1, got num_epochs=0"),
        ("num_epochs", 1.5, "num_epochs=1.5"),
        ("seed", -1, "seed=-1"),
        ("l1", -0.1, "l1=-0.1"),
        ("l2", float("nan"), "l2=nan"),
        ("log_every", 0, "log_every=0"),
        ("eval_every", True, "eval_every=True"),
        ("checkpoint_every", 0, "checkpoint_every=0"),
        ("max_to_keep", 0, "max_to_keep=0"),
        ("max_steps", 0, "max_steps=0"),
        ("early_stopping", "loss", "early_stopping='loss'"),
        ("progress", 1, "progress=1"),
        ("restore_best", True, "restore_best=True needs early_stopping"),
    ],
)
def test_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**{field: value})


def test_train_rejects_inconsistent_arguments(helpers):
    data = helpers.make_classification_data()
    model = helpers.DropoutMLP(rngs=nnx.Rngs(0))
    batches_fn = helpers.make_batches_fn(data)
    loss_fn = classification_loss()
    config = TrainConfig(progress=False)
    with pytest.raises(ValueError, match="split='val', which is not in eval_sets"):
        train(model, SGD, loss_fn, batches_fn, TrainConfig(early_stopping=EarlyStopping("loss")))
    with pytest.raises(ValueError, match="checkpoint_every=2 needs a workdir"):
        train(model, SGD, loss_fn, batches_fn, TrainConfig(checkpoint_every=2))
    with pytest.raises(ValueError, match=r"batches_fn\(epoch=0, start_step=0\) yielded no batch"):
        train(model, SGD, loss_fn, lambda epoch, start: [], config)
    with pytest.raises(TypeError, match="config must be a jdrop.train.TrainConfig"):
        train(model, SGD, loss_fn, batches_fn, {"num_epochs": 1})
    with pytest.raises(ValueError, match="metric='nope' is not among"):
        train(
            model,
            SGD,
            loss_fn,
            batches_fn,
            TrainConfig(progress=False, early_stopping=EarlyStopping("nope")),
            eval_sets={"val": lambda: batches_fn(0, 0)},
        )
