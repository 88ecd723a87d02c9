"""The training loop's options together (issue 16): max-norm x early stopping x resume.

Each option is tested alone elsewhere. Here each combination runs three ways: straight,
stopped at ``max_steps`` and resumed (bitwise the same, as the loop documents), and as a
plain optax loop written from the documented rules (step ``t`` draws its dropout masks
with ``fold_in(key(seed), t)``; early stopping after ``patience`` evaluations without an
improvement of more than ``min_delta``): an independent reference, which also fails if
steps reused one dropout key.
"""

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
    max_norm,
    train,
)

EPOCHS, RADIUS, L2 = 4, 0.6, 1e-3


def _reference(helpers, tx, loss_fn, data, val, *, early_stopping, restore_best):
    """The documented loop in plain JAX + optax, with no jdrop.train machinery."""
    model = helpers.DropoutMLP(rate=0.3, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    opt_state = tx.init(params)
    key = jax.random.key(0)  # TrainConfig.seed = 0

    def objective(params, batch, step_key):
        loss, _ = loss_fn(nnx.merge(graphdef, params), batch, step_key, None)
        kernels = [p for path, p in jax.tree_util.tree_leaves_with_path(params)
                   if "kernel" in jax.tree_util.keystr(path)]
        return loss + L2 / 2 * sum(jnp.sum(k**2) for k in kernels)

    @jax.jit
    def step_fn(params, opt_state, batch, step):
        grads = jax.grad(objective)(params, batch, jax.random.fold_in(key, step))
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    step, best, best_params, waited = 0, None, params, 0
    batches_fn = helpers.make_batches_fn(data)
    for epoch in range(EPOCHS):
        for batch in batches_fn(epoch, 0):
            params, opt_state = step_fn(params, opt_state, batch, step)
            step += 1
        if early_stopping is None:
            continue
        value = float(loss_fn(nnx.merge(graphdef, params), val, None, None)[0])
        if best is None or value < best - early_stopping.min_delta:
            best, best_params, waited = value, params, 0
        else:
            waited += 1
            if waited >= early_stopping.patience:
                break
    return (best_params if restore_best else params), params, step


def _column_norms(params):
    return [np.linalg.norm(np.asarray(p), axis=0)
            for path, p in jax.tree_util.tree_leaves_with_path(params)
            if "kernel" in jax.tree_util.keystr(path)]


@pytest.mark.parametrize("use_max_norm,use_early_stopping,stop_at", [
    (True, True, 6),     # all together: stopped mid-epoch 1, after the first evaluation
    (True, False, 4),    # stopped at an epoch boundary
    (False, True, 3),    # stopped inside epoch 0
])
def test_max_norm_early_stopping_resume(helpers, tmp_path, use_max_norm, use_early_stopping,
                                        stop_at):
    base = optax.sgd(0.5, momentum=0.9)
    tx = optax.chain(base, max_norm(RADIUS)) if use_max_norm else base
    loss_fn = classification_loss()
    data = helpers.make_classification_data()
    val = helpers.make_classification_data(n=helpers.BATCH, seed=5)
    val["labels"] = (val["labels"] + 1) % 3  # fitting the training set hurts here: it stops
    rule = EarlyStopping("loss", patience=1, min_delta=1e-3) if use_early_stopping else None
    config = dict(num_epochs=EPOCHS, progress=False, l2=L2, early_stopping=rule,
                  restore_best=use_early_stopping)

    def run(workdir, **extra):
        return train(helpers.DropoutMLP(rate=0.3, rngs=nnx.Rngs(0)), tx, loss_fn,
                     helpers.make_batches_fn(data), TrainConfig(**config, **extra),
                     workdir=workdir, eval_sets={"val": lambda: [val]})

    straight = run(tmp_path / "a")
    stopped = run(tmp_path / "b", max_steps=stop_at)
    assert stopped.step == stop_at
    resumed = run(tmp_path / "b")
    helpers.assert_trees_equal(resumed.state, straight.state)
    helpers.assert_trees_equal(nnx.state(resumed.model, nnx.Param),
                               nnx.state(straight.model, nnx.Param))
    assert resumed.stopped_early == straight.stopped_early
    assert resumed.early_stopping == straight.early_stopping

    model_params, last_params, steps = _reference(
        helpers, tx, loss_fn, data, val, early_stopping=rule, restore_best=use_early_stopping)
    assert straight.step == steps
    if use_early_stopping:
        assert straight.stopped_early and steps < EPOCHS * helpers.STEPS_PER_EPOCH
    for got, want in ((straight.state.params, last_params),
                      (nnx.state(straight.model, nnx.Param), model_params)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
    if use_max_norm:  # every unit's incoming weights in the ball, resumed or not
        for params in (resumed.state.params, nnx.state(resumed.model, nnx.Param)):
            norms = _column_norms(params)
            assert norms and max(n.max() for n in norms) <= RADIUS * (1 + 1e-5)
        assert max(n.max() for n in _column_norms(last_params)) > RADIUS * 0.99  # it binds
