"""Runs a recurrent cell over time with ``jax.lax.scan``, with recurrent dropout and zoneout.

The input half of the gates is precomputed for every time step (one large matmul, outside
the loop), so the loop body holds one ``(B, H) x (H, G*H)`` matmul and elementwise work:

    for t in 0..T-1:   h_rec = m * h_{t-1} / (1 - p)          (variational, same m for all t)
                       s_t   = step(s_{t-1}, gates_x[t], h_rec)
                       s_t   = zoneout(fold_in(key, t), s_{t-1}, s_t, rate)   (optional)

The recurrent keep-mask ``m`` is drawn once per sequence by the caller
(:func:`jdrop.keep_mask`) and applied with :func:`jdrop.apply_mask` inside the loop;
zoneout draws a fresh mask per step from ``fold_in(zoneout_key, t)`` (and per state entry,
``fold_in(., i)``, so ``h`` and ``c`` of an LSTM get independent masks).

References:
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Krueger et al. "Zoneout: Regularizing RNNs by Randomly Preserving Hidden Activations".
  ICLR 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jdrop
from jdrop._checks import concrete_rate
from jdrop.nn.rnn_cells import State, StepFn

__all__ = ["scan_cell"]


def _zoneout_state(key, prev: State, new: State, rate) -> State:
    deterministic = key is None
    return tuple(
        jdrop.zoneout(
            None if deterministic else jax.random.fold_in(key, index),
            old,
            cand,
            rate,
            deterministic=deterministic,
        )
        for index, (old, cand) in enumerate(zip(prev, new, strict=True))
    )


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
      >>> from jdrop.nn.rnn_cells import LSTMCell
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
