"""LSTM and GRU cells with fused gate kernels (one input and one recurrent matrix per cell).

Each cell holds an input kernel ``w_ih`` of shape ``(in, G * H)`` and a recurrent kernel
``w_hh`` of shape ``(H, G * H)`` (``G = 4`` gates for the LSTM, ``3`` for the GRU), so a time
step costs one matrix product instead of ``G``. The input half of every step does not depend
on the recurrence, so a layer computes it for all time steps at once
(:meth:`LSTMCell.project_inputs`, one large matmul outside the ``lax.scan``) and the scan
only runs the recurrent half (:func:`lstm_step`, :func:`gru_step`).

LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000), gate order
``i, f, g, o`` as in PyTorch and cuDNN::

    [a_i, a_f, a_g, a_o] = x_t W_ih + b + h_{t-1} W_hh
    c_t = sigmoid(a_f) * c_{t-1} + sigmoid(a_i) * tanh(a_g)
    h_t = sigmoid(a_o) * tanh(c_t)

GRU, the PyTorch/cuDNN variant (the reset gate multiplies the recurrent matmul's output,
``r * (h W_hn + b_hn)``, rather than Cho et al.'s ``(r * h) W_hn``, so the whole recurrent
product is one matmul before the gates), gate order ``r, z, n``::

    [x_r, x_z, x_n] = x_t W_ih + b_ih        [h_r, h_z, h_n] = h_{t-1} W_hh + b_hh
    r = sigmoid(x_r + h_r),   z = sigmoid(x_z + h_z),   n = tanh(x_n + r * h_n)
    h_t = (1 - z) * n + z * h_{t-1}

Recurrent state: a tuple whose first entry is the hidden state ``h`` (``(h, c)`` for the
LSTM, ``(h,)`` for the GRU), so dropout and zoneout code treats both cells alike.

References:
  Hochreiter & Schmidhuber. "Long Short-Term Memory". Neural Computation, 1997.
  Gers, Schmidhuber, Cummins. "Learning to Forget: Continual Prediction with LSTM". 2000.
  Cho et al. "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
  Machine Translation". EMNLP 2014.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jdrop._validation import check_choice, check_int, check_number

__all__ = ["GRUCell", "LSTMCell", "RecurrentCell", "gru_step", "lstm_step", "make_cell"]

State = tuple[jax.Array, ...]
StepFn = Callable[[State, jax.Array, jax.Array], State]


def lstm_step(w_hh: jax.Array, state: State, gates_x: jax.Array, h_rec=None) -> State:
    """One LSTM time step given the precomputed input half of the gates.

    Args:
      w_hh: recurrent kernel ``(H, 4H)``, gate order ``i, f, g, o``.
      state: ``(h, c)``, each ``(..., H)``.
      gates_x: ``x_t W_ih + b``, shape ``(..., 4H)``.
      h_rec: the hidden state fed to the recurrent matmul (``h`` itself by default; a
        masked ``h`` for variational recurrent dropout).

    Returns:
      The new state ``(h_t, c_t)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> h, c = lstm_step(jnp.zeros((2, 8)), (jnp.zeros(2), jnp.zeros(2)), jnp.zeros(8))
      >>> h.shape, c.tolist()
      ((2,), [0.0, 0.0])
    """
    h, c = state
    h_rec = h if h_rec is None else h_rec
    gates = gates_x + h_rec @ w_hh
    a_i, a_f, a_g, a_o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(a_f) * c + jax.nn.sigmoid(a_i) * jnp.tanh(a_g)
    h = jax.nn.sigmoid(a_o) * jnp.tanh(c)
    return (h, c)


def gru_step(
    w_hh: jax.Array, b_hh: jax.Array, state: State, gates_x: jax.Array, h_rec=None
) -> State:
    """One GRU time step (PyTorch/cuDNN variant) given the input half of the gates.

    Args:
      w_hh: recurrent kernel ``(H, 3H)``, gate order ``r, z, n``.
      b_hh: recurrent bias ``(3H,)`` (inside the reset gate's product for ``n``).
      state: ``(h,)`` with ``h`` of shape ``(..., H)``.
      gates_x: ``x_t W_ih + b_ih``, shape ``(..., 3H)``.
      h_rec: the hidden state fed to the recurrent matmul (default ``h``).

    Returns:
      The new state ``(h_t,)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> (h,) = gru_step(jnp.zeros((2, 6)), jnp.zeros(6), (jnp.ones(2),), jnp.zeros(6))
      >>> h.tolist()  # z = 0.5, n = 0: h = 0.5 * h_prev
      [0.5, 0.5]
    """
    (h,) = state
    h_rec = h if h_rec is None else h_rec
    x_r, x_z, x_n = jnp.split(gates_x, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h_rec @ w_hh + b_hh, 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return (n + z * (h - n),)


def _uniform(key, shape, scale: float, dtype) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, -scale, scale)


class RecurrentCell(nnx.Module):
    """Shared parts of the fused cells: parameters, state and the input projection.

    Subclasses set ``num_gates`` and ``state_size`` and implement :meth:`make_step`.
    """

    num_gates: int = 0
    state_size: int = 0

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        rngs: nnx.Rngs,
        init_scale: float | None = None,
        dtype=jnp.float32,
    ):
        self.in_features = check_int(in_features, "in_features", 1)
        self.hidden_size = check_int(hidden_size, "hidden_size", 1)
        init_scale = check_number(init_scale, "init_scale", positive=True, optional=True)
        scale = 1.0 / math.sqrt(hidden_size) if init_scale is None else init_scale
        width = self.num_gates * hidden_size
        self.w_ih = nnx.Param(_uniform(rngs.params(), (in_features, width), scale, dtype))
        self.w_hh = nnx.Param(_uniform(rngs.params(), (hidden_size, width), scale, dtype))
        self.b_ih = nnx.Param(_uniform(rngs.params(), (width,), scale, dtype))

    def init_state(self, batch_size: int, dtype=jnp.float32) -> State:
        """Zero state: a tuple of ``state_size`` arrays of shape ``(batch_size, H)``."""
        shape = (check_int(batch_size, "batch_size", 1), self.hidden_size)
        return tuple(jnp.zeros(shape, dtype) for _ in range(self.state_size))

    def project_inputs(self, x: jax.Array) -> jax.Array:
        """The input half of the gates, ``x W_ih + b``, for any leading shape of ``x``."""
        return x @ self.w_ih[...] + self.b_ih[...]

    def make_step(self, w_hh: jax.Array | None = None) -> StepFn:
        """Returns ``step(state, gates_x, h_rec) -> state`` using ``w_hh`` (default: own)."""
        raise NotImplementedError

    def __call__(self, state: State, x: jax.Array) -> tuple[State, jax.Array]:
        """One deterministic time step: ``(state, x_t) -> (new_state, h_t)``."""
        new = self.make_step()(state, self.project_inputs(x), state[0])
        return new, new[0]


class LSTMCell(RecurrentCell):
    """LSTM cell with fused gates: ``w_ih (in, 4H)``, ``w_hh (H, 4H)``, one bias ``(4H,)``.

    Parameters are drawn from ``U(-s, s)`` with ``s = init_scale`` (Zaremba et al. use 0.1,
    0.05, 0.04) or ``1/sqrt(H)`` (PyTorch's default) when ``init_scale`` is ``None``.
    ``forget_bias`` is added to the forget-gate bias at initialisation.

    Args:
      in_features: input size.
      hidden_size: ``H``.
      rngs: NNX random streams (the ``params`` stream is used).
      init_scale: half-width of the uniform initialiser, or ``None``.
      forget_bias: constant added to the forget gate's bias (Jozefowicz et al. use 1).
      dtype: parameter dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> cell = LSTMCell(3, 4, rngs=nnx.Rngs(0))
      >>> cell.w_ih.shape, cell.w_hh.shape
      ((3, 16), (4, 16))
      >>> state, h = cell(cell.init_state(2), jnp.ones((2, 3)))
      >>> h.shape, len(state)
      ((2, 4), 2)

    References:
      Hochreiter & Schmidhuber 1997; Gers et al. 2000; Jozefowicz, Zaremba, Sutskever. "An
      Empirical Exploration of Recurrent Network Architectures". ICML 2015.
    """

    num_gates = 4
    state_size = 2

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        rngs: nnx.Rngs,
        init_scale: float | None = None,
        forget_bias: float = 0.0,
        dtype=jnp.float32,
    ):
        super().__init__(in_features, hidden_size, rngs=rngs, init_scale=init_scale, dtype=dtype)
        if forget_bias:
            h = self.hidden_size
            self.b_ih[...] = self.b_ih[...].at[h : 2 * h].add(np.asarray(forget_bias, dtype))

    def make_step(self, w_hh: jax.Array | None = None) -> StepFn:
        w_hh = self.w_hh[...] if w_hh is None else w_hh
        return lambda state, gates_x, h_rec: lstm_step(w_hh, state, gates_x, h_rec)


class GRUCell(RecurrentCell):
    """GRU cell, PyTorch/cuDNN variant, fused: ``w_ih (in, 3H)``, ``w_hh (H, 3H)``.

    Two biases, ``b_ih`` and ``b_hh`` (``3H`` each), because ``b_hh``'s ``n`` part sits
    inside the reset gate's product. Initialisation as in :class:`LSTMCell`.

    Args:
      in_features: input size.
      hidden_size: ``H``.
      rngs: NNX random streams (the ``params`` stream is used).
      init_scale: half-width of the uniform initialiser, or ``None`` for ``1/sqrt(H)``.
      dtype: parameter dtype.

    Examples:
      >>> import jax.numpy as jnp
      >>> from flax import nnx
      >>> cell = GRUCell(3, 4, rngs=nnx.Rngs(0))
      >>> cell.w_hh.shape, cell.b_hh.shape
      ((4, 12), (12,))
      >>> state, h = cell(cell.init_state(2), jnp.ones((2, 3)))
      >>> h.shape, len(state)
      ((2, 4), 1)

    References:
      Cho et al. EMNLP 2014; Chung et al. "Empirical Evaluation of Gated Recurrent Neural
      Networks on Sequence Modeling". 2014.
    """

    num_gates = 3
    state_size = 1

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        rngs: nnx.Rngs,
        init_scale: float | None = None,
        dtype=jnp.float32,
    ):
        super().__init__(in_features, hidden_size, rngs=rngs, init_scale=init_scale, dtype=dtype)
        scale = 1.0 / math.sqrt(hidden_size) if init_scale is None else float(init_scale)
        self.b_hh = nnx.Param(_uniform(rngs.params(), (3 * hidden_size,), scale, dtype))

    def make_step(self, w_hh: jax.Array | None = None) -> StepFn:
        w_hh = self.w_hh[...] if w_hh is None else w_hh
        b_hh = self.b_hh[...]
        return lambda state, gates_x, h_rec: gru_step(w_hh, b_hh, state, gates_x, h_rec)


CELLS = {"lstm": LSTMCell, "gru": GRUCell}


def make_cell(kind: str, in_features: int, hidden_size: int, **kwargs) -> RecurrentCell:
    """Builds an ``"lstm"`` or ``"gru"`` cell; ``kwargs`` go to the cell's constructor.

    Raises:
      ValueError: unknown ``kind``.

    Examples:
      >>> from flax import nnx
      >>> type(make_cell("gru", 2, 3, rngs=nnx.Rngs(0))).__name__
      'GRUCell'
    """
    return CELLS[check_choice(kind, "cell", sorted(CELLS))](in_features, hidden_size, **kwargs)
