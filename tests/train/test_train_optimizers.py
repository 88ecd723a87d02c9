"""make_optimizer / make_schedule: the named optax pieces and their checks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdrop.train import make_optimizer, make_schedule


def _update(tx, grads, params):
    with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
        updates, _ = tx.update(grads, tx.init(params), params)
    return updates


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("constant", {}, [1.0, 1.0, 1.0, 1.0, 1.0]),
        ("linear", dict(total_steps=4), [1.0, 0.75, 0.5, 0.25, 0.0]),
        ("cosine", dict(total_steps=4), [1.0, 0.8535534, 0.5, 0.1464466, 0.0]),
        ("exponential", dict(decay_rate=0.5), [1.0, 0.5, 0.25, 0.125, 0.0625]),
        ("linear", dict(total_steps=6, warmup_steps=2), [0.0, 0.5, 1.0, 0.75, 0.5]),
    ],
)
def test_schedules(name, kwargs, expected):
    schedule = make_schedule(name, 1.0, **kwargs)
    np.testing.assert_allclose([float(schedule(t)) for t in range(5)], expected, rtol=1e-6)


def test_sgd_weight_decay_acts_on_kernels_only():
    params = {"kernel": jnp.array([2.0]), "bias": jnp.array([2.0])}
    grads = {"kernel": jnp.array([1.0]), "bias": jnp.array([1.0])}
    updates = _update(make_optimizer("sgd", 0.1, weight_decay=0.5), grads, params)
    np.testing.assert_allclose(updates["kernel"], [-0.1 * (1.0 + 0.5 * 2.0)], rtol=1e-6)
    np.testing.assert_allclose(updates["bias"], [-0.1], rtol=1e-6)


def test_adamw_matches_optax():
    params = {"kernel": jnp.array([2.0, -1.0])}
    grads = {"kernel": jnp.array([0.3, 0.1])}
    ours = _update(make_optimizer("adamw", 0.01, weight_decay=0.1), grads, params)
    ref = _update(optax.adamw(0.01, weight_decay=0.1), grads, params)
    np.testing.assert_allclose(ours["kernel"], ref["kernel"], rtol=1e-6)


def test_clip_norm():
    params = {"kernel": jnp.zeros(2)}
    updates = _update(
        make_optimizer("sgd", 1.0, clip_norm=1.0), {"kernel": jnp.array([3.0, 4.0])}, params
    )
    np.testing.assert_allclose(updates["kernel"], [-0.6, -0.8], rtol=1e-6)


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_other_names_build_and_step(name):
    params = {"kernel": jnp.ones(3)}
    updates = _update(make_optimizer(name, 0.1), {"kernel": jnp.ones(3)}, params)
    assert np.all(np.asarray(updates["kernel"]) < 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_optimizer("lion", 0.1), "name='lion'"),
        (lambda: make_optimizer("sgd", 0.0), "learning_rate=0.0"),
        (lambda: make_optimizer("sgd", 0.1, momentum=1.0), "momentum=1.0"),
        (lambda: make_optimizer("adam", 0.1, momentum=0.9), "momentum=0.9 with name='adam'"),
        (lambda: make_optimizer("adam", 0.1, nesterov=True), "nesterov=True"),
        (lambda: make_optimizer("sgd", 0.1, weight_decay=-1.0), "weight_decay=-1.0"),
        (lambda: make_optimizer("sgd", 0.1, clip_norm=0.0), "clip_norm=0.0"),
        (lambda: make_optimizer("sgd", 0.1, schedule="step"), "schedule='step'"),
        (lambda: make_schedule("cosine", 0.1), "total_steps=None"),
        (lambda: make_schedule("linear", 0.1, total_steps=2, warmup_steps=2), "total_steps=2"),
        (lambda: make_schedule("exponential", 0.1), "decay_rate=None"),
        (lambda: make_schedule("exponential", 0.1, decay_rate=2.0), "decay_rate=2.0"),
        (lambda: make_schedule("constant", 0.1, warmup_steps=-1), "warmup_steps=-1"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
