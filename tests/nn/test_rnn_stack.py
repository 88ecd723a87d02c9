"""RNNStack (jdrop.nn): input, output, recurrent and weight-drop masks, and its modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.nn import RNNStack


def _input_gradient(stack, key):
    """d(sum of outputs)/dx: zero exactly where the input mask dropped a unit."""
    x = jax.random.normal(jax.random.key(9), (4, 6, 32))
    return nnx.jit(nnx.grad(lambda x, m: m(x, key=key)[0].sum()))(x, stack)


def test_variational_input_mask_is_the_same_at_every_step():
    stack = RNNStack(32, (8,), rngs=nnx.Rngs(0), input_dropout=0.5)
    dropped = np.asarray(_input_gradient(stack, jax.random.key(1)) == 0)
    assert 0.35 < dropped.mean() < 0.65
    for t in range(1, 6):
        np.testing.assert_array_equal(dropped[:, t], dropped[:, 0])


def test_zaremba_input_masks_are_fresh_at_every_step():
    stack = RNNStack(32, (8,), rngs=nnx.Rngs(0), dropout_mode="zaremba", input_dropout=0.5)
    dropped = np.asarray(_input_gradient(stack, jax.random.key(1)) == 0)
    assert 0.35 < dropped.mean() < 0.65
    for t in range(1, 6):
        assert (dropped[:, t] != dropped[:, 0]).mean() > 0.3  # about half differ


@pytest.mark.parametrize("mode", ["variational", "zaremba"])
def test_output_masks_per_sequence_or_per_step(mode):
    stack = RNNStack(4, (64,), rngs=nnx.Rngs(0), dropout_mode=mode, output_dropout=0.5)
    y, _ = stack(jnp.ones((3, 5, 4)), key=jax.random.key(2))
    zeros = np.asarray(y == 0)
    assert 0.35 < zeros.mean() < 0.65
    same = [(zeros[:, t] == zeros[:, 0]).all() for t in range(1, 5)]
    assert all(same) if mode == "variational" else not any(same)


@pytest.mark.parametrize("lstm_vjp", [True, False])
def test_recurrent_mask_drops_units_of_the_carried_state(lstm_vjp):
    # An LSTM's h_0 reaches the outputs only through the recurrent matmul, after the mask:
    # d(outputs)/d(h_0) is exactly zero at the dropped units (same units at every step).
    stack = RNNStack(3, (64,), rngs=nnx.Rngs(0), recurrent_dropout=0.5)
    stack.lstm_vjp = lstm_vjp  # the custom-VJP scan and the autodiff scan alike
    x = jax.random.normal(jax.random.key(3), (4, 5, 3))
    c0 = jnp.zeros((4, 64))
    h0 = jnp.full((4, 64), 0.5, jnp.float32)

    def grad_h0(key):
        loss = lambda h, m: m(x, key=key, deterministic=key is None, state=((h, c0),))[0].sum()
        return nnx.jit(nnx.grad(loss))(h0, stack)

    grad = grad_h0(jax.random.key(5))
    assert 0.35 < (np.asarray(grad) == 0).mean() < 0.65
    if lstm_vjp:  # in inference nothing is dropped
        assert (np.asarray(grad_h0(None)) != 0).all()


def test_weight_drop_uses_one_mask_for_the_whole_sequence():
    # W_hh' = where(m, W_hh / (1 - p), 0) once per forward pass: the gradient is exactly zero
    # at dropped weights, about half of them (a mask per step would leave none at zero).
    stack = RNNStack(3, (16,), rngs=nnx.Rngs(0), weight_drop=0.5)
    x = jax.random.normal(jax.random.key(3), (4, 12, 3))
    grad_fn = nnx.jit(nnx.grad(lambda m, key: m(x, key=key, deterministic=key is None)[0].sum()))
    grads = grad_fn(stack, jax.random.key(1))
    zero = np.asarray(grads.cells[0].w_hh[...] == 0)
    assert 0.35 < zero.mean() < 0.65
    dense = grad_fn(stack, None)
    assert (np.asarray(dense.cells[0].w_hh[...]) != 0).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="zaremba"):
        RNNStack(2, (3,), rngs=nnx.Rngs(0), dropout_mode="zaremba", recurrent_dropout=0.2)
    with pytest.raises(ValueError, match="dropout_mode"):
        RNNStack(2, (3,), rngs=nnx.Rngs(0), dropout_mode="gal")
    with pytest.raises(ValueError, match="input_dropout"):
        RNNStack(2, (3,), rngs=nnx.Rngs(0), input_dropout=1.0)


def test_modes(key):
    stack = RNNStack(3, (8,), rngs=nnx.Rngs(0), input_dropout=0.5, zoneout=0.2)
    x = jax.random.normal(key, (2, 5, 3))
    with pytest.raises(ValueError, match=r"RNNStack is in training mode.*model\.eval\(\)"):
        stack(x)
    y, _ = stack(x, deterministic=True)
    stack.eval()
    np.testing.assert_array_equal(stack(x)[0], y)
    np.testing.assert_array_equal(stack(x, key=key)[0], y)  # a key does not turn training on
    stack.train()
    assert not np.allclose(stack(x, key=key)[0], y)
