"""Multi-layer recurrent stacks and the recurrent language model, with every RNN dropout.

Layer ``l`` of a stack reads ``x_l`` (``x_0`` the embedded tokens) and computes::

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

Either mode combines with embedding (word-type) dropout, weight drop, zoneout and tied
input/output embeddings (Press & Wolf 2017; Inan et al. 2017). Tensors are time-major
inside the stack; models take and return batch-major ``(B, T, ...)`` arrays.

Keys: ``key=None`` is deterministic inference (no dropout; zoneout uses its expectation).
Otherwise every purpose gets its own key: ``split(key)`` into embedding and stack keys, the
stack key split once into four keys per layer (input mask, recurrent mask, weight drop,
zoneout) and one for the output mask.

References:
  Zaremba, Sutskever, Vinyals. "Recurrent Neural Network Regularization". arXiv 2014.
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Merity, Keskar, Socher. "Regularizing and Optimizing LSTM Language Models". ICLR 2018.
  Krueger et al. "Zoneout". ICLR 2017.
  Press & Wolf. "Using the Output Embedding to Improve Language Models". EACL 2017.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jdrop
from jdrop._validation import check_float_array, concrete_rate
from jdrop.nn._cells import CELLS, State, make_cell
from jdrop.nn._scan import lstm_layer, scan_cell

__all__ = ["DROPOUT_MODES", "LMConfig", "RNNLanguageModel", "RNNStack", "count_params"]

DROPOUT_MODES = ("zaremba", "variational")
StackState = tuple[State, ...]


def _check_mode(dropout_mode: str) -> str:
    if dropout_mode not in DROPOUT_MODES:
        raise ValueError(
            f"dropout_mode must be one of {DROPOUT_MODES}, got dropout_mode={dropout_mode!r}"
        )
    return dropout_mode


def _rate(value, name: str) -> float:
    """A concrete rate in ``[0, 1)`` as a Python float (models store their rates)."""
    rate = concrete_rate(value, name, allow_one=False)
    if rate is None:
        raise TypeError(f"{name} must be a Python number, got a traced value {value!r}")
    return rate


def _split(key, count: int) -> list:
    return list(jax.random.split(jdrop.as_key(key), count))


class RNNStack(nnx.Module):
    """A stack of LSTM or GRU layers run with ``lax.scan``, with RNN dropout options.

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
    ):
        sizes = tuple(hidden_sizes)
        if not sizes:
            raise ValueError(f"hidden_sizes must name at least one layer, got {hidden_sizes!r}")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got cell={cell!r}")
        self.cell_kind = cell
        self.dropout_mode = _check_mode(dropout_mode)
        self.input_dropout = _rate(input_dropout, "input_dropout")
        self.hidden_dropout = _rate(hidden_dropout, "hidden_dropout")
        self.output_dropout = _rate(output_dropout, "output_dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self.weight_drop = _rate(weight_drop, "weight_drop")
        self.zoneout = _rate(zoneout, "zoneout")
        if dropout_mode == "zaremba" and self.recurrent_dropout > 0:
            raise ValueError(
                "dropout_mode='zaremba' drops non-recurrent connections only; got "
                f"recurrent_dropout={recurrent_dropout!r} (use dropout_mode='variational')"
            )
        if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
            raise ValueError(f"unroll must be a positive int, got unroll={unroll!r}")
        self.unroll = unroll
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
        state: StackState | None = None,
        time_major: bool = False,
    ) -> tuple[jax.Array, StackState]:
        """Runs the stack over a sequence.

        Args:
          x: ``(B, T, F)`` floating-point inputs (``(T, B, F)`` if ``time_major``).
          key: PRNG key for the dropout masks, or ``None`` for deterministic inference.
          state: the recurrent state from the previous segment (truncated backprop);
            ``None`` starts from zeros.
          time_major: inputs and outputs are ``(T, B, ...)``.

        Returns:
          ``(outputs, new_state)``: the last layer's hidden states, shaped like ``x`` with
          ``F`` replaced by the last hidden size, and the state after the last step.
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
        num_layers = len(self.cells)
        # One split for every purpose: 4 keys per layer (input mask, recurrent mask, weight
        # drop, zoneout) and one for the output mask.
        count = 4 * num_layers + 1
        keys = [None] * count if key is None else _split(key, count)
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


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Configuration of a recurrent language model (see :mod:`jdrop.nn.lm_configs`).

    Attributes:
      vocab_size: number of token types.
      embed_size: embedding width.
      hidden_sizes: hidden size of each recurrent layer.
      cell: ``"lstm"`` or ``"gru"``.
      dropout_mode: ``"zaremba"`` or ``"variational"``.
      embedding_dropout: word-type dropout rate on the embedding rows.
      input_dropout: dropout on the embedded tokens (the first layer's input).
      hidden_dropout: dropout between recurrent layers.
      output_dropout: dropout on the last layer's output, before the decoder.
      recurrent_dropout: variational dropout on ``h_{t-1}`` in the recurrence.
      weight_drop: DropConnect on the hidden-to-hidden matrices.
      zoneout: zoneout rate on the recurrent state.
      tie_weights: decoder kernel = embedding transposed (last hidden size = embed size).
      init_scale: uniform init half-width for every weight; ``None``: ``U(+-1/sqrt(H))``
        for recurrent and decoder weights, ``U(+-0.1)`` for the embedding (AWD-LSTM's).
      unroll: ``lax.scan`` unroll factor (speed only).
    """

    vocab_size: int
    embed_size: int
    hidden_sizes: tuple[int, ...]
    cell: str = "lstm"
    dropout_mode: str = "variational"
    embedding_dropout: float = 0.0
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    output_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    weight_drop: float = 0.0
    zoneout: float = 0.0
    tie_weights: bool = False
    init_scale: float | None = None
    unroll: int = 1

    def __post_init__(self):
        for name in ("vocab_size", "embed_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {name}={value!r}")
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        _rate(self.embedding_dropout, "embedding_dropout")
        if self.tie_weights and self.hidden_sizes and self.hidden_sizes[-1] != self.embed_size:
            raise ValueError(
                "tie_weights needs the last hidden size to equal embed_size, got "
                f"hidden_sizes={self.hidden_sizes}, embed_size={self.embed_size}"
            )


class RNNLanguageModel(nnx.Module):
    """Embedding -> recurrent stack -> softmax decoder, with every RNN dropout option.

    ``logits, state = model(ids, key=key, state=state)`` maps ``(B, T)`` integer tokens to
    ``(B, T, vocab_size)`` logits. Pass the returned state into the next call to carry the
    recurrence across batches (truncated backprop through time; stop its gradient between
    steps with ``jax.lax.stop_gradient`` if the step is not already jitted per batch).

    Args:
      config: an :class:`LMConfig`.
      rngs: NNX random streams for initialisation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> config = LMConfig(vocab_size=11, embed_size=6, hidden_sizes=(8, 6), tie_weights=True,
      ...                   embedding_dropout=0.1, recurrent_dropout=0.2, weight_drop=0.5)
      >>> model = RNNLanguageModel(config, rngs=nnx.Rngs(0))
      >>> ids = jnp.zeros((2, 5), jnp.int32)
      >>> logits, state = model(ids, key=jax.random.key(0))
      >>> logits.shape, logits.dtype
      ((2, 5, 11), dtype('float32'))
      >>> logits2, _ = model(ids[:, :1], state=state)  # continue where the batch ended
      >>> logits2.shape
      (2, 1, 11)
    """

    def __init__(self, config: LMConfig, *, rngs: nnx.Rngs):
        if not isinstance(config, LMConfig):
            raise TypeError(f"config must be an LMConfig, got {type(config).__name__}")
        self.config = config
        scale = config.init_scale
        vocab, embed = config.vocab_size, config.embed_size
        emb_scale = 0.1 if scale is None else scale
        self.embedding = nnx.Param(
            jax.random.uniform(rngs.params(), (vocab, embed), jnp.float32, -emb_scale, emb_scale)
        )
        self.rnn = RNNStack(
            embed,
            config.hidden_sizes,
            rngs=rngs,
            cell=config.cell,
            dropout_mode=config.dropout_mode,
            input_dropout=config.input_dropout,
            hidden_dropout=config.hidden_dropout,
            output_dropout=config.output_dropout,
            recurrent_dropout=config.recurrent_dropout,
            weight_drop=config.weight_drop,
            zoneout=config.zoneout,
            init_scale=scale,
            unroll=config.unroll,
        )
        last = config.hidden_sizes[-1]
        if config.tie_weights:
            self.decoder_kernel = None
        else:
            dec_scale = 1.0 / math.sqrt(last) if scale is None else scale
            self.decoder_kernel = nnx.Param(
                jax.random.uniform(rngs.params(), (last, vocab), jnp.float32, -dec_scale, dec_scale)
            )
        self.decoder_bias = nnx.Param(jnp.zeros((vocab,), jnp.float32))

    def init_state(self, batch_size: int) -> StackState:
        """The zero recurrent state for ``batch_size`` sequences."""
        return self.rnn.init_state(batch_size)

    def embed(self, ids: jax.Array, key=None) -> jax.Array:
        """Embeds ``ids`` with word-type dropout when ``key`` is given (any shape)."""
        table = self.embedding[...]
        rate = self.config.embedding_dropout
        if key is None or rate == 0.0:
            return jnp.take(table, ids, axis=0)
        return jdrop.embedding_dropout(key, ids, table, rate)

    def decode(self, h: jax.Array) -> jax.Array:
        """Logits ``h W + b`` (``W = E^T`` when the embeddings are tied)."""
        if self.decoder_kernel is None:
            logits = h @ self.embedding[...].T
        else:
            logits = h @ self.decoder_kernel[...]
        return logits + self.decoder_bias[...]

    def __call__(
        self, ids: jax.Array, *, key=None, state: StackState | None = None
    ) -> tuple[jax.Array, StackState]:
        """Next-token logits for every position.

        Args:
          ids: ``(B, T)`` integer token ids.
          key: PRNG key for dropout; ``None`` for deterministic inference.
          state: recurrent state from the previous segment, or ``None`` for zeros.

        Returns:
          ``(logits, new_state)``; ``logits`` is ``(B, T, vocab_size)`` float32.

        Raises:
          TypeError: non-integer ``ids``. ValueError: ``ids`` not 2-D.
        """
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(f"ids must be integer token ids, got ids.dtype={ids.dtype}")
        if ids.ndim != 2:
            raise ValueError(f"ids must be (batch, time), got ids.shape={ids.shape}")
        emb_key, rnn_key = (None, None) if key is None else _split(key, 2)
        x = self.embed(ids.T, emb_key)  # time-major (T, B, E)
        h, state = self.rnn(x, key=rnn_key, state=state, time_major=True)
        return self.decode(jnp.swapaxes(h, 0, 1)), state


def count_params(model: nnx.Module) -> int:
    """Number of scalars in a model's ``nnx.Param`` leaves (works on ``nnx.eval_shape``).

    Args:
      model: an NNX module, concrete or abstract (from ``nnx.eval_shape``).

    Returns:
      The parameter count as a Python int.

    Examples:
      >>> from flax import nnx
      >>> config = LMConfig(vocab_size=10, embed_size=4, hidden_sizes=(4,), tie_weights=True)
      >>> count_params(nnx.eval_shape(lambda: RNNLanguageModel(config, rngs=nnx.Rngs(0))))
      194
    """
    leaves = jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))
    return int(sum(np.prod(leaf.shape, dtype=np.int64) for leaf in leaves))
