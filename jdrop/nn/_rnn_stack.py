"""A multi-layer LSTM/GRU layer run with ``lax.scan``, with every recurrent dropout.

Layer ``l`` of a stack reads ``x_l`` (``x_0`` the stack's input) and computes::

    x_l'  = drop_in(x_l)                      input (l = 0) or between-layer dropout
    G_l   = x_l' W_ih + b                     all time steps at once: one big matmul
    W_hh' = weight_drop(W_hh)                 once per forward pass (Merity et al. 2017)
    h_l   = scan_t step(G_l[t], m_l * h_{t-1}, W_hh')   m_l: recurrent mask (Gal), zoneout
    x_{l+1} = h_l

and the stack's output is ``drop_out(h_{L-1})``. Two dropout modes:

* ``"zaremba"`` (Zaremba et al. 2014): dropout on the non-recurrent connections only, a
  fresh mask at every time step. The masks act on whole ``(T, B, F)`` tensors before the
  input matmul, so this is plain :func:`jdrop.dropout` on the tensor.
* ``"variational"`` (Gal & Ghahramani 2016): one mask per sequence, the same at every step,
  on inputs, outputs (:func:`jdrop.locked_dropout`) and the recurrent connection
  (:func:`jdrop.keep_mask` once, :func:`jdrop.apply_mask` inside the scan; one mask shared by
  the fused gates, Gal's "tied" variant).

Either mode combines with weight drop and zoneout. Tensors are time-major inside the stack.

Keys: the stack's key is split (:func:`jdrop.nn.split_key`) into four keys per layer (input
mask, recurrent mask, weight drop, zoneout) and one for the output mask. In inference
(``deterministic=True`` or ``eval()``) nothing is dropped and zoneout uses its expectation;
training without a key raises.

References:
  Zaremba, Sutskever, Vinyals. "Recurrent Neural Network Regularization". arXiv 2014.
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Merity, Keskar, Socher. "Regularizing and Optimizing LSTM Language Models". ICLR 2018.
  Krueger et al. "Zoneout". ICLR 2017.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

import jdrop
from jdrop._validation import check_choice, check_float_array, check_int, check_rate
from jdrop.nn._cells import CELLS, State, make_cell
from jdrop.nn._mode import StochasticModule, layer_keys
from jdrop.nn._scan import lstm_layer, scan_cell

__all__ = ["DROPOUT_MODES", "RNNStack", "StackState"]

DROPOUT_MODES = ("zaremba", "variational")
StackState = tuple[State, ...]


class RNNStack(StochasticModule):
    r"""A stack of LSTM or GRU layers run with ``lax.scan``, with RNN dropout options.

    Layer :math:`l` computes, with :math:`x^l_t` its input at step :math:`t` (the previous
    layer's output) and inverted-dropout masks :math:`\tilde m = m / (1 - p)`,

    .. math::

       h^l_t = \mathrm{cell}\left(\tilde m^l_t \odot x^l_t,\;
       \tilde r^l \odot h^l_{t-1};\; W^l_{hh}\right).

    ``dropout_mode="zaremba"``: a fresh :math:`m^l_t` at every step and no recurrent mask
    (:math:`r = 1`; Zaremba et al. 2014). ``"variational"``: one :math:`m^l` and one
    :math:`r^l` per sequence, shared by every step (Gal & Ghahramani 2016). ``weight_drop``
    replaces :math:`W^l_{hh}` by :math:`M \odot W^l_{hh} / (1 - p)` once per forward pass
    (Merity et al. 2018); ``zoneout`` updates the state as
    :math:`s_t = d \odot s_{t-1} + (1 - d) \odot \tilde s_t`,
    :math:`d \sim \mathrm{Bernoulli}(p)` per step (Krueger et al. 2017).

    Args:
      in_features: size of the input features.
      hidden_sizes: one hidden size per layer, e.g. ``(650, 650)``.
      rngs: NNX random streams for initialisation.
      cell: ``"lstm"`` or ``"gru"``.
      dropout_mode: ``"zaremba"`` (fresh per-step masks, no recurrent dropout) or
        ``"variational"`` (per-sequence masks, recurrent dropout allowed).
      input_dropout: rate on the stack's input (layer 0).
      hidden_dropout: rate on the outputs of layers ``0..L-2`` (the inputs of ``1..L-1``).
      output_dropout: rate on the last layer's output.
      recurrent_dropout: rate on ``h_{t-1}`` before the recurrent matmul (variational only).
      weight_drop: DropConnect rate on every ``W_hh``, one mask per forward pass.
      zoneout: zoneout rate on every state entry (``h`` and ``c``), a mask per step.
      init_scale: uniform initialisation half-width (``None``: ``1/sqrt(H)``).
      unroll: ``lax.scan`` unroll factor.
      lstm_vjp: run LSTM layers without zoneout through :func:`jdrop.nn._scan.lstm_layer`
        (hand-written backward pass; same values, faster training). ``False`` uses
        :func:`jdrop.nn._scan.scan_cell` and automatic differentiation.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Raises:
      ValueError: unknown ``cell``/``dropout_mode``, rates outside ``[0, 1)``,
        ``recurrent_dropout > 0`` with ``dropout_mode="zaremba"``, empty ``hidden_sizes``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> stack = RNNStack(3, (8, 5), rngs=nnx.Rngs(0), recurrent_dropout=0.25)
      >>> y, state = stack(jnp.ones((2, 7, 3)), key=jax.random.key(1))
      >>> y.shape, [s[0].shape for s in state]
      ((2, 7, 5), [(2, 8), (2, 5)])
      >>> stack.eval(); stack(jnp.ones((2, 7, 3)))[0].shape   # inference
      (2, 7, 5)
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        *,
        rngs: nnx.Rngs,
        cell: str = "lstm",
        dropout_mode: str = "variational",
        input_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        output_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        weight_drop: float = 0.0,
        zoneout: float = 0.0,
        init_scale: float | None = None,
        unroll: int = 1,
        lstm_vjp: bool = True,
        deterministic: bool = False,
    ):
        sizes = tuple(hidden_sizes)
        if not sizes:
            raise ValueError(f"hidden_sizes must name at least one layer, got {hidden_sizes!r}")
        self.cell_kind = check_choice(cell, "cell", sorted(CELLS))
        self.dropout_mode = check_choice(dropout_mode, "dropout_mode", DROPOUT_MODES)
        self.input_dropout = check_rate(input_dropout, "input_dropout", allow_one=False)
        self.hidden_dropout = check_rate(hidden_dropout, "hidden_dropout", allow_one=False)
        self.output_dropout = check_rate(output_dropout, "output_dropout", allow_one=False)
        self.recurrent_dropout = check_rate(recurrent_dropout, "recurrent_dropout", allow_one=False)
        self.weight_drop = check_rate(weight_drop, "weight_drop", allow_one=False)
        self.zoneout = check_rate(zoneout, "zoneout", allow_one=False)
        self.deterministic = deterministic
        if dropout_mode == "zaremba" and self.recurrent_dropout > 0:
            raise ValueError(
                "dropout_mode='zaremba' drops non-recurrent connections only; got "
                f"recurrent_dropout={recurrent_dropout!r} (use dropout_mode='variational')"
            )
        self.unroll = check_int(unroll, "unroll", 1)
        self.lstm_vjp = lstm_vjp
        self.hidden_sizes = sizes
        widths = (in_features, *sizes)
        self.cells = nnx.List(
            [
                make_cell(cell, widths[i], widths[i + 1], rngs=rngs, init_scale=init_scale)
                for i in range(len(sizes))
            ]
        )

    def init_state(self, batch_size: int, dtype=jnp.float32) -> StackState:
        """Zero state: one cell state per layer (``(h, c)`` for LSTM, ``(h,)`` for GRU)."""
        return tuple(cell.init_state(batch_size, dtype) for cell in self.cells)

    def _drop(self, key, x: jax.Array, rate: float) -> jax.Array:
        """Non-recurrent dropout on a time-major ``(T, B, F)`` tensor."""
        if key is None or rate == 0.0:
            return x
        if self.dropout_mode == "zaremba":
            return jdrop.dropout(key, x, rate)
        return jdrop.locked_dropout(key, x, rate, time_axis=0)

    def __call__(
        self,
        x: jax.Array,
        *,
        key=None,
        deterministic=None,
        state: StackState | None = None,
        time_major: bool = False,
    ) -> tuple[jax.Array, StackState]:
        """Runs the stack over a sequence.

        Args:
          x: ``(B, T, F)`` floating-point inputs (``(T, B, F)`` if ``time_major``).
          key: PRNG key for the dropout masks (required while training).
          deterministic: inference, no dropout (default: ``self.deterministic``).
          state: the recurrent state from the previous segment (truncated backprop);
            ``None`` starts from zeros.
          time_major: inputs and outputs are ``(T, B, ...)``.

        Returns:
          ``(outputs, new_state)``: the last layer's hidden states, shaped like ``x`` with
          ``F`` replaced by the last hidden size, and the state after the last step.

        Raises:
          ValueError: ``x`` not 3-D, a state of the wrong depth, training without ``key``.
        """
        x = check_float_array(x)
        if x.ndim != 3:
            raise ValueError(f"x must be (batch, time, features), got x.shape={x.shape}")
        xt = x if time_major else jnp.swapaxes(x, 0, 1)
        batch = xt.shape[1]
        if state is None:
            state = self.init_state(batch, x.dtype)
        if len(state) != len(self.cells):
            raise ValueError(f"state has {len(state)} layers, the stack has {len(self.cells)}")
        # One split for every purpose: 4 keys per layer (input mask, recurrent mask, weight
        # drop, zoneout) and one for the output mask.
        keys, _ = layer_keys(self, key, deterministic, 4 * len(self.cells) + 1)
        new_state = []
        for index, cell in enumerate(self.cells):
            rate_in = self.input_dropout if index == 0 else self.hidden_dropout
            k_in, k_rec, k_wd, k_zone = keys[4 * index : 4 * index + 4]
            xt = self._drop(k_in, xt, rate_in)
            w_hh = cell.w_hh[...]
            if k_wd is not None and self.weight_drop > 0:
                w_hh = jdrop.weight_drop(k_wd, w_hh, self.weight_drop)
            keep = None
            if k_rec is not None and self.recurrent_dropout > 0:
                keep = jdrop.keep_mask(k_rec, (batch, cell.hidden_size), self.recurrent_dropout)
            if self.lstm_vjp and self.cell_kind == "lstm" and self.zoneout == 0.0:
                layer_state, xt = lstm_layer(
                    cell.w_ih[...],
                    cell.b_ih[...],
                    w_hh,
                    xt,
                    state[index],
                    recurrent_keep=keep,
                    recurrent_rate=self.recurrent_dropout,
                    unroll=self.unroll,
                )
            else:
                layer_state, xt = scan_cell(
                    cell.make_step(w_hh),
                    state[index],
                    cell.project_inputs(xt),
                    recurrent_keep=keep,
                    recurrent_rate=self.recurrent_dropout,
                    zoneout_rate=self.zoneout,
                    zoneout_key=k_zone,
                    unroll=self.unroll,
                )
            new_state.append(layer_state)
        xt = self._drop(keys[-1], xt, self.output_dropout)
        y = xt if time_major else jnp.swapaxes(xt, 0, 1)
        return y, tuple(new_state)
