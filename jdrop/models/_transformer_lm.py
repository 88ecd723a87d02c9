"""A decoder-only Transformer language model (GPT / nanoGPT shape) with every dropout named.

``ids -> token + position embeddings -> embedding dropout -> N pre-LN blocks (causal
self-attention with attention-weight dropout, residual dropout on each sub-layer's
output) -> LayerNorm -> tied decoder``. With ``num_layers=6, features=384, num_heads=6,
block_size=256`` and every rate 0.2 it is nanoGPT's ``shakespeare_char`` model
(Karpathy 2022): nanoGPT drops the embedding sum, the attention weights and each
sub-layer's output (its MLP dropout sits after the output projection, i.e. the residual
dropout here); ``ffn_dropout`` (inside the MLP) is 0 there.

The model is called like :class:`jdrop.models.RNNLanguageModel`::

    logits, context = model(ids, key=key)                        # training
    logits, context = model(ids, deterministic=True, state=context)  # inference

``state`` is the context window: the last ``block_size - 1`` tokens and how many of them
are real (:meth:`TransformerLM.init_state` is empty). A call attends over the context and
its own tokens, so :func:`jdrop.models.generate` samples from it as from an RNN (each step
recomputes the window: simple, not fast). Training ignores the context when ``state`` is
``None``.

References:
  Radford et al. "Language Models are Unsupervised Multitask Learners" (GPT-2). 2019.
  Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
  Karpathy. nanoGPT, ``config/train_shakespeare_char.py``. 2022.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import nnx

from jdrop._dropout import dropout
from jdrop._validation import check_int, check_rate
from jdrop.nn import TransformerBlock
from jdrop.nn._mode import layer_keys

__all__ = ["TransformerLM", "TransformerLMConfig"]


@dataclasses.dataclass(frozen=True)
class TransformerLMConfig:
    """Configuration of a :class:`TransformerLM`.

    Attributes:
      vocab_size: number of token types.
      block_size: the longest context (learned positions ``0 .. block_size - 1``).
      num_layers: Transformer blocks.
      features: model width ``d_model``.
      num_heads: attention heads (divide ``features``).
      ffn_features: feed-forward inner width (``None``: ``4 * features``).
      embedding_dropout: dropout on the token + position embedding sum.
      attention_dropout: dropout on the attention weights.
      residual_dropout: dropout on each sub-layer's output before the residual add.
      ffn_dropout: dropout on the feed-forward activation.
      tie_weights: decoder kernel = token embedding transposed (GPT-2, nanoGPT).
    """

    vocab_size: int
    block_size: int = 256
    num_layers: int = 6
    features: int = 384
    num_heads: int = 6
    ffn_features: int | None = None
    embedding_dropout: float = 0.0
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    ffn_dropout: float = 0.0
    tie_weights: bool = True

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "num_layers", "features", "num_heads"):
            check_int(getattr(self, name), name, 1)
        check_int(self.ffn_features, "ffn_features", 1, optional=True)
        if self.features % self.num_heads:
            raise ValueError(
                f"features must be divisible by num_heads, got features={self.features}, "
                f"num_heads={self.num_heads}"
            )
        for name in ("embedding_dropout", "attention_dropout", "residual_dropout",
                     "ffn_dropout"):
            check_rate(getattr(self, name), name, allow_one=False)

    @classmethod
    def nanogpt_shakespeare_char(cls, vocab_size: int = 65, dropout_rate: float = 0.2):
        """nanoGPT's ``shakespeare_char`` shape: 6 layers, 384 wide, 6 heads, block 256.

        Examples:
          >>> TransformerLMConfig.nanogpt_shakespeare_char().residual_dropout
          0.2
        """
        return cls(vocab_size=vocab_size, embedding_dropout=dropout_rate,
                   attention_dropout=dropout_rate, residual_dropout=dropout_rate)


class TransformerLM(nnx.Module):
    """Decoder-only Transformer LM: ``(B, T)`` tokens -> ``(B, T, vocab)`` logits.

    Args:
      config: a :class:`TransformerLMConfig`.
      rngs: NNX random streams for initialisation.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> config = TransformerLMConfig(vocab_size=11, block_size=8, num_layers=2,
      ...                              features=16, num_heads=2, residual_dropout=0.1)
      >>> model = TransformerLM(config, rngs=nnx.Rngs(0))
      >>> ids = jnp.zeros((2, 5), jnp.int32)
      >>> logits, context = model(ids, key=jax.random.key(0))
      >>> logits.shape
      (2, 5, 11)
      >>> model.eval()
      >>> next_logits, context = model(ids[:, :1], state=context)  # continues the text
      >>> next_logits.shape
      (2, 1, 11)

    References:
      Radford et al. "Language Models are Unsupervised Multitask Learners". 2019.
    """

    def __init__(self, config: TransformerLMConfig, *, rngs: nnx.Rngs,
                 deterministic: bool = False):
        if not isinstance(config, TransformerLMConfig):
            raise TypeError(
                f"config must be a TransformerLMConfig, got {type(config).__name__}"
            )
        self.config = config
        self.deterministic = deterministic
        init = nnx.initializers.normal(0.02)
        self.token_embedding = nnx.Param(
            init(rngs.params(), (config.vocab_size, config.features), jnp.float32)
        )
        self.position_embedding = nnx.Param(
            init(rngs.params(), (config.block_size, config.features), jnp.float32)
        )
        self.blocks = nnx.List([
            TransformerBlock(
                config.features, config.num_heads, config.ffn_features,
                attention_dropout=config.attention_dropout,
                residual_dropout=config.residual_dropout, ffn_dropout=config.ffn_dropout,
                deterministic=deterministic, rngs=rngs,
            )
            for _ in range(config.num_layers)
        ])
        self.norm = nnx.LayerNorm(config.features, rngs=rngs)
        if config.tie_weights:
            self.decoder_kernel = nnx.data(None)
        else:
            self.decoder_kernel = nnx.Param(
                init(rngs.params(), (config.features, config.vocab_size), jnp.float32)
            )
        self.decoder_bias = nnx.Param(jnp.zeros((config.vocab_size,), jnp.float32))

    def init_state(self, batch_size: int):
        """An empty context: ``(tokens (B, block_size - 1) int32, length ())``."""
        width = self.config.block_size - 1
        return jnp.zeros((batch_size, width), jnp.int32), jnp.zeros((), jnp.int32)

    def __call__(self, ids, *, key=None, deterministic=None, state=None):
        """Next-token logits for every position of ``ids``.

        Args:
          ids: ``(B, T)`` integer tokens, ``T <= block_size``.
          key: PRNG key for dropout (required while training).
          deterministic: inference, no dropout (default: ``self.deterministic``).
          state: a context from :meth:`init_state` or a previous call (``None``: none).
            The call sees its last ``block_size - T`` tokens.

        Returns:
          ``(logits, new_state)``: ``(B, T, vocab_size)`` float32 logits and the context
          extended by ``ids``.

        Raises:
          TypeError: non-integer ``ids``. ValueError: ``ids`` not 2-D or longer than
          ``block_size``; training without ``key``.
        """
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(f"ids must be integer token ids, got ids.dtype={ids.dtype}")
        block = self.config.block_size
        if ids.ndim != 2 or not 1 <= ids.shape[1] <= block:
            raise ValueError(
                f"ids must be (batch, time) with 1 <= time <= block_size={block}, got "
                f"ids.shape={ids.shape}"
            )
        batch, length = ids.shape
        keys, det = layer_keys(self, key, deterministic, 1 + len(self.blocks))
        if state is None:
            tokens, positions, mask, context = ids, jnp.arange(length), None, None
        else:
            context, used = state
            width = context.shape[1]
            seen = jnp.minimum(used, block - length)  # context tokens this call sees
            tokens = jnp.concatenate([context, ids.astype(context.dtype)], axis=1)
            start = width - seen
            positions = jnp.maximum(jnp.arange(width + length) - start, 0)
            # real keys only; a padding query attends to itself (finite, never read)
            span = jnp.arange(width + length)
            mask = (span[None, :] >= start) | (span[None, :] == span[:, None])
            mask = mask[None, None]
        h = (jnp.take(self.token_embedding[...], tokens, axis=0)
             + jnp.take(self.position_embedding[...], positions, axis=0))
        h = dropout(keys[0], h, self.config.embedding_dropout, deterministic=keys[0] is None)
        for block_key, layer in zip(keys[1:], self.blocks, strict=True):
            h = layer(h, mask=mask, is_causal=True, key=block_key, deterministic=det)
        h = self.norm(h[:, -length:])
        kernel = (self.token_embedding[...].T if self.decoder_kernel is None
                  else self.decoder_kernel[...])
        logits = h @ kernel + self.decoder_bias[...]
        if state is None:
            width = block - 1
            padded = jnp.pad(ids.astype(jnp.int32), ((0, 0), (max(width - length, 0), 0)))
            new_state = (padded[:, -width:], jnp.asarray(min(length, width), jnp.int32))
        else:
            new_state = (tokens[:, -width:], jnp.minimum(used + length, width))
        del batch
        return logits, new_state
