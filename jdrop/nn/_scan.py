"""Runs a recurrent cell over time with ``jax.lax.scan``, with recurrent dropout and zoneout.

The input half of the gates is precomputed for every time step (one large matmul, outside
the loop), so the loop body holds one ``(B, H) x (H, G*H)`` matmul and elementwise work:

    for t in 0..T-1:   h_rec = m * h_{t-1} / (1 - p)          (variational, same m for all t)
                       s_t   = step(s_{t-1}, gates_x[t], h_rec)
                       s_t   = zoneout(fold_in(key, t), s_{t-1}, s_t, rate)   (optional)

The recurrent keep-mask ``m`` is drawn once per sequence by the caller
(:func:`jdrop.keep_mask`) and applied with :func:`jdrop.apply_mask` inside the loop;
zoneout draws a fresh mask per step from ``fold_in(zoneout_key, t)``, over the stacked state
entries, so ``h`` and ``c`` of an LSTM get independent masks.

References:
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Krueger et al. "Zoneout: Regularizing RNNs by Randomly Preserving Hidden Activations".
  ICLR 2017.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

import jdrop
from jdrop._validation import concrete_rate
from jdrop.nn._cells import State, StepFn

__all__ = ["lstm_layer", "scan_cell"]


def _zoneout_state(key, prev: State, new: State, rate) -> State:
    """Zoneout on every state entry; one mask over the stacked ``(S, B, H)`` entries."""
    out = jdrop.zoneout(key, jnp.stack(prev), jnp.stack(new), rate, deterministic=key is None)
    return tuple(out)


def scan_cell(
    step: StepFn,
    state: State,
    gates_x: jax.Array,
    *,
    recurrent_keep: jax.Array | None = None,
    recurrent_rate=0.0,
    zoneout_rate=0.0,
    zoneout_key=None,
    reverse: bool = False,
    unroll: int = 1,
) -> tuple[State, jax.Array]:
    """Scans ``step`` over the leading (time) axis of ``gates_x``.

    Args:
      step: ``step(state, gates_x_t, h_rec) -> state`` (from ``cell.make_step(w_hh)``).
      state: initial state, a tuple whose first entry is ``h`` of shape ``(B, H)``.
      gates_x: time-major input projections ``(T, B, G*H)``.
      recurrent_keep: boolean ``(B, H)`` keep-mask for ``h_{t-1}`` before the recurrent
        matmul (variational dropout), or ``None``.
      recurrent_rate: the rate ``recurrent_keep`` was drawn with (sets the scale).
      zoneout_rate: zoneout probability (0 disables zoneout).
      zoneout_key: key for the per-step zoneout masks; ``None`` with a positive rate
        applies zoneout's expectation (inference).
      reverse: scan from the last step to the first (outputs stay in time order).
      unroll: ``lax.scan``'s unroll factor.

    Returns:
      ``(final_state, outputs)`` with ``outputs`` the hidden states ``(T, B, H)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> from jdrop.nn._cells import LSTMCell
      >>> cell = LSTMCell(3, 4, rngs=nnx.Rngs(0))
      >>> gates_x = cell.project_inputs(jnp.ones((5, 2, 3)))
      >>> state, hs = scan_cell(cell.make_step(), cell.init_state(2), gates_x)
      >>> hs.shape, bool((hs[-1] == state[0]).all())
      ((5, 2, 4), True)
    """
    zoneout_value = concrete_rate(zoneout_rate, "zoneout_rate")
    use_zoneout = zoneout_value is None or zoneout_value > 0.0
    num_steps = gates_x.shape[0]

    def body(carry: State, inputs):
        t, gx = inputs
        h = carry[0]
        h_rec = h if recurrent_keep is None else jdrop.apply_mask(h, recurrent_keep, recurrent_rate)
        new = step(carry, gx, h_rec)
        if use_zoneout:
            key = None if zoneout_key is None else jax.random.fold_in(zoneout_key, t)
            new = _zoneout_state(key, carry, new, zoneout_rate)
        return new, new[0]

    steps = jnp.arange(num_steps, dtype=jnp.uint32)
    return jax.lax.scan(body, tuple(state), (steps, gates_x), reverse=reverse, unroll=unroll)


def _project(x: jax.Array, w_ih: jax.Array) -> jax.Array:
    """``x W_ih`` for all time steps as one ``(T*B, F) x (F, 4H)`` matmul."""
    steps, batch, features = x.shape
    return (x.reshape(steps * batch, features) @ w_ih).reshape(steps, batch, -1)


def _lstm_forward(x, w_ih, b, w_hh, h0, c0, keep, rate, unroll):
    """The LSTM layer; also returns what the hand-written backward pass needs."""
    gates_x = _project(x, w_ih)

    def body(carry, gx):
        h, c = carry
        h_rec = h if keep is None else jdrop.apply_mask(h, keep, rate)
        a_i, a_f, a_g, a_o = jnp.split(gx + h_rec @ w_hh + b, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(a_i), jax.nn.sigmoid(a_f), jnp.tanh(a_g), jax.nn.sigmoid(a_o)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    (h, c), (hs, cs, acts) = jax.lax.scan(body, (h0, c0), gates_x, unroll=unroll)
    return (h, c), hs, cs, acts


@functools.partial(jax.custom_vjp, nondiff_argnums=(7, 8))
def _lstm_layer(x, w_ih, b, w_hh, h0, c0, keep, rate, unroll):
    (h, c), hs, _, _ = _lstm_forward(x, w_ih, b, w_hh, h0, c0, keep, rate, unroll)
    return (h, c), hs


def _lstm_layer_fwd(x, w_ih, b, w_hh, h0, c0, keep, rate, unroll):
    (h, c), hs, cs, acts = _lstm_forward(x, w_ih, b, w_hh, h0, c0, keep, rate, unroll)
    return ((h, c), hs), (x, w_ih, w_hh, h0, c0, keep, hs, cs, acts)


def _lstm_layer_bwd(rate, unroll, residuals, cotangents):
    x, w_ih, w_hh, h0, c0, keep, hs, cs, acts = residuals
    (g_h, g_c), g_hs = cotangents
    c_prev = jnp.concatenate([c0[None], cs[:-1]], axis=0)
    w_hh_t = w_hh.T

    def body(carry, inputs):
        dh, dc = carry
        g_out, c, cp, act = inputs
        i, f, g, o = jnp.split(act, 4, axis=-1)
        tc = jnp.tanh(c)
        dh = dh + g_out
        dc = dc + dh * o * (1 - tc * tc)
        da_i = dc * g * i * (1 - i)
        da_f = dc * cp * f * (1 - f)
        da_g = dc * i * (1 - g * g)
        da_o = dh * tc * o * (1 - o)
        da = jnp.concatenate([da_i, da_f, da_g, da_o], axis=-1)
        dh_rec = da @ w_hh_t
        dh_prev = dh_rec if keep is None else jdrop.apply_mask(dh_rec, keep, rate)
        return (dh_prev, dc * f), da

    (dh0, dc0), das = jax.lax.scan(
        body, (g_h, g_c), (g_hs, cs, c_prev, acts), reverse=True, unroll=unroll
    )
    steps, batch, features = x.shape
    hidden = hs.shape[-1]
    rows = steps * batch
    da = das.reshape(rows, 4 * hidden)
    dx = (da @ w_ih.T).reshape(x.shape)
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    h_rec = h_prev if keep is None else jdrop.apply_mask(h_prev, keep, rate)
    # Both weight gradients in one (F + H, T*B) x (T*B, 4H) matmul. The barrier keeps XLA
    # from folding the transpose into the dot (CPU matmul kernels want the contracted
    # dimension last in the left operand; a folded transpose falls back to a slow path).
    inputs_t = jax.lax.optimization_barrier(
        jnp.concatenate([x.reshape(rows, features), h_rec.reshape(rows, hidden)], axis=1).T
    )
    dw = inputs_t @ da
    return dx, dw[:features], da.sum(axis=0), dw[features:], dh0, dc0, None


_lstm_layer.defvjp(_lstm_layer_fwd, _lstm_layer_bwd)


def lstm_layer(
    w_ih: jax.Array,
    b: jax.Array,
    w_hh: jax.Array,
    x: jax.Array,
    state: State,
    *,
    recurrent_keep: jax.Array | None = None,
    recurrent_rate=0.0,
    unroll: int = 1,
) -> tuple[State, jax.Array]:
    """A whole LSTM layer (input projection and recurrence) with a hand-written backward pass.

    Same values as ``scan_cell(cell.make_step(w_hh), state, x @ w_ih + b, ...)``, without
    zoneout. Forward: one ``(T*B, F) x (F, 4H)`` matmul for the input half of every gate, then
    the scan. Backward: the reverse loop runs only the recurrent part (the gate derivatives
    ``da_t`` and ``dh_{t-1} = da_t W_hh^T``); after it, ``dx = da W_ih^T`` and both weight
    gradients, ``[dW_ih; dW_hh] = [x, h_rec_{t-1}]^T da``, are one matmul each over all
    ``T * B`` rows, as in cuDNN. Automatic differentiation of the scan would instead add a
    ``(H, 4H)`` outer product into the weight gradient at every step.

    Args:
      w_ih: input kernel ``(F, 4H)``.
      b: bias ``(4H,)``.
      w_hh: recurrent kernel ``(H, 4H)`` (after weight drop, if any).
      x: time-major inputs ``(T, B, F)`` (after input dropout, if any).
      state: ``(h0, c0)``.
      recurrent_keep, recurrent_rate, unroll: as in :func:`scan_cell`.

    Returns:
      ``((h_T, c_T), outputs)`` with ``outputs`` of shape ``(T, B, H)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from jdrop.nn._cells import LSTMCell
      >>> cell = LSTMCell(3, 4, rngs=nnx.Rngs(0))
      >>> x = jnp.ones((5, 2, 3))
      >>> params = cell.w_ih[...], cell.b_ih[...], cell.w_hh[...]
      >>> _, fast = lstm_layer(*params, x, cell.init_state(2))
      >>> _, slow = scan_cell(cell.make_step(), cell.init_state(2), cell.project_inputs(x))
      >>> bool(jnp.allclose(fast, slow, atol=1e-6))
      True
    """
    h0, c0 = state
    return _lstm_layer(x, w_ih, b, w_hh, h0, c0, recurrent_keep, recurrent_rate, unroll)
