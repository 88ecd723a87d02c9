"""LSTM and GRU cells against NumPy references written from the equations, and the scans."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jdrop
from jdrop.nn._cells import GRUCell, LSTMCell, gru_step, lstm_step, make_cell
from jdrop.nn._scan import lstm_layer, scan_cell


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(x, h, c, w_ih, w_hh, b):
    """LSTM step, gate order (i, f, g, o):
    a = x W_ih + h W_hh + b;  c' = s(a_f) c + s(a_i) tanh(a_g);  h' = s(a_o) tanh(c')."""
    a = x @ w_ih + h @ w_hh + b
    hidden = h.shape[-1]
    a_i, a_f, a_g, a_o = (a[:, k * hidden : (k + 1) * hidden] for k in range(4))
    c = _sigmoid(a_f) * c + _sigmoid(a_i) * np.tanh(a_g)
    return _sigmoid(a_o) * np.tanh(c), c


def numpy_gru(x, h, w_ih, w_hh, b_ih, b_hh):
    """GRU step, PyTorch/cuDNN variant, gate order (r, z, n):
    r = s(x W_r + b_ir + h U_r + b_hr);  z = s(x W_z + b_iz + h U_z + b_hz);
    n = tanh(x W_n + b_in + r * (h U_n + b_hn));  h' = (1 - z) n + z h."""
    hidden = h.shape[-1]
    gx = x @ w_ih + b_ih
    gh = h @ w_hh + b_hh
    part = lambda g, k: g[:, k * hidden : (k + 1) * hidden]
    r = _sigmoid(part(gx, 0) + part(gh, 0))
    z = _sigmoid(part(gx, 1) + part(gh, 1))
    n = np.tanh(part(gx, 2) + r * part(gh, 2))
    return (1.0 - z) * n + z * h


def _np(x):
    return np.asarray(x, np.float64)


@pytest.mark.parametrize("steps", [1, 6])
def test_lstm_cell_matches_numpy_reference(steps):
    cell = LSTMCell(5, 4, rngs=nnx.Rngs(1), init_scale=0.8)
    xs = jax.random.normal(jax.random.key(2), (steps, 3, 5))
    state = (jnp.full((3, 4), 0.3, jnp.float32), jnp.full((3, 4), -0.2, jnp.float32))
    h, c = _np(state[0]), _np(state[1])
    params = [_np(cell.w_ih[...]), _np(cell.w_hh[...]), _np(cell.b_ih[...])]
    for t in range(steps):
        state, out = cell(state, xs[t])
        h, c = numpy_lstm(_np(xs[t]), h, c, *params)
        np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state[1], c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 6])
def test_gru_cell_matches_numpy_reference(steps):
    cell = GRUCell(5, 4, rngs=nnx.Rngs(1), init_scale=0.8)
    xs = jax.random.normal(jax.random.key(2), (steps, 3, 5))
    state = (jnp.full((3, 4), 0.3, jnp.float32),)
    h = _np(state[0])
    params = [_np(getattr(cell, n)[...]) for n in ("w_ih", "w_hh", "b_ih", "b_hh")]
    for t in range(steps):
        state, out = cell(state, xs[t])
        h = numpy_gru(_np(xs[t]), h, *params)
        np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)


def test_gru_reset_gate_multiplies_recurrent_product_not_state():
    # PyTorch variant: n = tanh(x_n + r * (h W_hn + b_hn)). With h = 0, x = 0 and b_hn = 1
    # this is tanh(r) = tanh(0.5); Cho et al.'s (r * h) W_hn form would give tanh(b_hn) = tanh(1).
    hidden = 2
    w_hh = jnp.zeros((hidden, 3 * hidden))
    b_hh = jnp.concatenate([jnp.zeros(2 * hidden), jnp.ones(hidden)])
    gates_x = jnp.zeros((1, 3 * hidden))
    (h,) = gru_step(w_hh, b_hh, (jnp.zeros((1, hidden)),), gates_x)
    r = z = 0.5
    np.testing.assert_allclose(h, np.full((1, hidden), (1 - z) * np.tanh(r * 1.0)), rtol=1e-6)


def test_fused_kernel_shapes_and_dtypes():
    lstm = LSTMCell(7, 3, rngs=nnx.Rngs(0))
    gru = GRUCell(7, 3, rngs=nnx.Rngs(0))
    assert lstm.w_ih.shape == (7, 12) and lstm.w_hh.shape == (3, 12) and lstm.b_ih.shape == (12,)
    assert gru.w_ih.shape == (7, 9) and gru.w_hh.shape == (3, 9) and gru.b_hh.shape == (9,)
    for cell in (lstm, gru):
        state, h = cell(cell.init_state(4), jnp.ones((4, 7)))
        assert h.shape == (4, 3) and h.dtype == jnp.float32
        assert all(s.shape == (4, 3) for s in state)


def test_init_scale_bounds_and_forget_bias():
    cell = LSTMCell(4, 8, rngs=nnx.Rngs(0), init_scale=0.05, forget_bias=1.0)
    assert float(jnp.abs(cell.w_hh[...]).max()) <= 0.05
    forget = cell.b_ih[...][8:16]
    others = jnp.concatenate([cell.b_ih[...][:8], cell.b_ih[...][16:]])
    assert float(forget.min()) >= 0.95 and float(jnp.abs(others).max()) <= 0.05


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="cell"):
        make_cell("rnn", 2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="hidden_size"):
        LSTMCell(2, 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="init_scale"):
        GRUCell(2, 3, rngs=nnx.Rngs(0), init_scale=-1.0)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_scan_cell_matches_python_loop(kind):
    cell = make_cell(kind, 3, 4, rngs=nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (5, 2, 3))
    final, outputs = scan_cell(cell.make_step(), cell.init_state(2), cell.project_inputs(xs))
    state = cell.init_state(2)
    for t in range(5):
        state, h = cell(state, xs[t])
        np.testing.assert_allclose(outputs[t], h, rtol=1e-6, atol=1e-6)
    for a, b in zip(final, state, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_scan_cell_reverse_reads_time_backwards():
    cell = make_cell("gru", 3, 4, rngs=nnx.Rngs(0))
    gx = cell.project_inputs(jax.random.normal(jax.random.key(1), (5, 2, 3)))
    _, backward = scan_cell(cell.make_step(), cell.init_state(2), gx, reverse=True)
    _, forward = scan_cell(cell.make_step(), cell.init_state(2), gx[::-1])
    np.testing.assert_allclose(backward, forward[::-1], rtol=1e-6, atol=1e-6)


def test_recurrent_mask_is_the_same_at_every_step():
    # A probe cell whose new state is 1 where the masked h_{t-1} is non-zero: with one mask
    # per sequence every step's output equals the mask itself.
    keep = jdrop.keep_mask(jax.random.key(3), (4, 16), 0.5)
    probe = lambda state, gx, h_rec: ((h_rec != 0).astype(gx.dtype) + gx,)
    _, outputs = scan_cell(
        probe, (jnp.ones((4, 16)),), jnp.zeros((6, 4, 16)), recurrent_keep=keep, recurrent_rate=0.5
    )
    assert 0 < int(keep.sum()) < keep.size
    for t in range(6):
        np.testing.assert_array_equal(outputs[t] != 0, keep)


def test_zoneout_masks_are_fresh_per_step_and_expected_at_inference():
    # Probe cell: candidate state is always 0; zoneout keeps the previous value (1) where the
    # per-step mask says "zone out", so a unit stays 1 only while it is zoned out.
    probe = lambda state, gx, h_rec: (jnp.zeros_like(state[0]) + gx,)
    init = (jnp.ones((8, 64)),)
    gx = jnp.zeros((2, 8, 64))
    _, outputs = scan_cell(probe, init, gx, zoneout_rate=0.5, zoneout_key=jax.random.key(0))
    first, second = np.asarray(outputs[0]), np.asarray(outputs[1])
    assert 0.4 < first.mean() < 0.6  # half the units zoned out at step 0
    assert 0.15 < second.mean() < 0.35  # fresh mask: about a quarter survive two steps
    _, expected = scan_cell(probe, init, gx, zoneout_rate=0.5, zoneout_key=None)
    np.testing.assert_allclose(expected[1], np.full((8, 64), 0.25), rtol=1e-6)


@pytest.mark.parametrize("rate", [0.0, 0.4])
def test_lstm_layer_custom_vjp_matches_autodiff(rate):
    cell = LSTMCell(3, 5, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (7, 2, 3))
    state = (jnp.full((2, 5), 0.2, jnp.float32), jnp.full((2, 5), -0.1, jnp.float32))
    keep = jdrop.keep_mask(jax.random.key(2), (2, 5), rate) if rate else None
    params = (cell.w_ih[...], cell.b_ih[...], cell.w_hh[...])

    def loss(fast, params, x, state):
        w_ih, b, w_hh = params
        if fast:
            final, hs = lstm_layer(
                w_ih, b, w_hh, x, state, recurrent_keep=keep, recurrent_rate=rate
            )
        else:
            final, hs = scan_cell(
                lambda s, gx, h_rec: lstm_step(w_hh, s, gx, h_rec),
                state,
                x @ w_ih + b,
                recurrent_keep=keep,
                recurrent_rate=rate,
            )
        return jnp.sum(jnp.sin(hs)) + jnp.sum(final[0] ** 2) + jnp.sum(final[1] ** 3)

    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(1, 2, 3)), static_argnums=0)
    fast_value, fast = value_and_grad(True, params, x, state)
    slow_value, slow = value_and_grad(False, params, x, state)
    np.testing.assert_allclose(fast_value, slow_value, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(slow), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
