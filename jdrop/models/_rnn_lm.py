"""The recurrent language model: embedding, :class:`jdrop.nn.RNNStack`, softmax decoder.

``ids -> embedding (word-type dropout) -> RNNStack (every RNN dropout) -> decoder``, with
tied input/output embeddings optional (Press & Wolf 2017; Inan et al. 2017). Models take
and return batch-major ``(B, T, ...)`` arrays.

Keys: ``split_key(key, 2)`` into the embedding's and the stack's keys (see
:mod:`jdrop.nn._rnn_stack` for the stack's split). Inference is ``deterministic=True`` or
``model.eval()``: no dropout, and zoneout uses its expectation; training without a key
raises.

References:
  Zaremba, Sutskever, Vinyals. "Recurrent Neural Network Regularization". arXiv 2014.
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Merity, Keskar, Socher. "Regularizing and Optimizing LSTM Language Models". ICLR 2018.
  Press & Wolf. "Using the Output Embedding to Improve Language Models". EACL 2017.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

import jdrop
from jdrop._validation import check_int, check_rate
from jdrop.nn._mode import StochasticModule, layer_keys
from jdrop.nn._rnn_stack import RNNStack, StackState

__all__ = ["LMConfig", "RNNLanguageModel"]


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Configuration of a recurrent language model (see :mod:`jdrop.models._lm_configs`).

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
            check_int(getattr(self, name), name, 1)
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        check_rate(self.embedding_dropout, "embedding_dropout", allow_one=False)
        if self.tie_weights and self.hidden_sizes and self.hidden_sizes[-1] != self.embed_size:
            raise ValueError(
                "tie_weights needs the last hidden size to equal embed_size, got "
                f"hidden_sizes={self.hidden_sizes}, embed_size={self.embed_size}"
            )


class RNNLanguageModel(StochasticModule):
    """Embedding -> recurrent stack -> softmax decoder, with every RNN dropout option.

    ``logits, state = model(ids, key=key, state=state)`` maps ``(B, T)`` integer tokens to
    ``(B, T, vocab_size)`` logits. Pass the returned state into the next call to carry the
    recurrence across batches (truncated backprop through time; stop its gradient between
    steps with ``jax.lax.stop_gradient`` if the step is not already jitted per batch).

    Args:
      config: an :class:`LMConfig`.
      rngs: NNX random streams for initialisation.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

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
      >>> model.eval()                                 # inference from here on
      >>> logits2, _ = model(ids[:, :1], state=state)  # continue where the batch ended
      >>> logits2.shape
      (2, 1, 11)
    """

    def __init__(self, config: LMConfig, *, rngs: nnx.Rngs, deterministic: bool = False):
        if not isinstance(config, LMConfig):
            raise TypeError(f"config must be an LMConfig, got {type(config).__name__}")
        self.config = config
        self.deterministic = deterministic
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
            deterministic=deterministic,
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
        """Embeds ``ids`` (any shape), with word-type dropout when ``key`` is given."""
        table = self.embedding[...]
        rate = self.config.embedding_dropout
        if key is None or rate == 0.0:
            return jnp.take(table, ids, axis=0)
        return jdrop.embedding_dropout(key, ids, table, rate)

    def decode(self, h: jax.Array) -> jax.Array:
        r"""Logits :math:`h W + b` (:math:`W = E^\top` when the embeddings are tied)."""
        if self.decoder_kernel is None:
            logits = h @ self.embedding[...].T
        else:
            logits = h @ self.decoder_kernel[...]
        return logits + self.decoder_bias[...]

    def __call__(
        self,
        ids: jax.Array,
        *,
        key=None,
        deterministic=None,
        state: StackState | None = None,
    ) -> tuple[jax.Array, StackState]:
        """Next-token logits for every position.

        Args:
          ids: ``(B, T)`` integer token ids.
          key: PRNG key for dropout (required while training).
          deterministic: inference, no dropout (default: ``self.deterministic``).
          state: recurrent state from the previous segment, or ``None`` for zeros.

        Returns:
          ``(logits, new_state)``; ``logits`` is ``(B, T, vocab_size)`` float32.

        Raises:
          TypeError: non-integer ``ids``. ValueError: ``ids`` not 2-D, or training
          without ``key``.
        """
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(f"ids must be integer token ids, got ids.dtype={ids.dtype}")
        if ids.ndim != 2:
            raise ValueError(f"ids must be (batch, time), got ids.shape={ids.shape}")
        (emb_key, rnn_key), det = layer_keys(self, key, deterministic, 2)
        x = self.embed(ids.T, emb_key)  # time-major (T, B, E)
        h, state = self.rnn(x, key=rnn_key, deterministic=det, state=state, time_major=True)
        return self.decode(jnp.swapaxes(h, 0, 1)), state
