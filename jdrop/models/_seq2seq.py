"""An encoder-decoder Transformer for translation with every dropout named (Vaswani et al. 2017).

::

    source ids -> E[s] * sqrt(d) + PE -> drop_emb -> N_enc pre-LN blocks -> LN -> memory
    target_in  -> E[t] * sqrt(d) + PE -> drop_emb -> N_dec pre-LN blocks (causal
                  self-attention, cross-attention to memory) -> LN -> h E^T -> logits

One embedding table ``E`` (a joint source/target subword vocabulary) serves the source,
the target and, with ``tie_embeddings=True``, the output projection (Press & Wolf 2017;
Vaswani et al. 2017, section 3.4). Positions are the fixed sinusoids of Vaswani et al.
(``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)``), not parameters.
The blocks are :class:`jdrop.nn.TransformerBlock` (pre-LN, Xiong et al. 2020), so the
four dropouts of the paper are separate rates:

* ``embedding_dropout``: on the embedding + positional sum (encoder and decoder);
* ``residual_dropout``: on each sub-layer's output before the residual add;
* ``attention_dropout``: on the attention weights (self- and cross-attention);
* ``ffn_dropout``: on the feed-forward activation.

Padding masks (``True`` = real token) are applied to the encoder self-attention (keys),
the cross-attention (source keys) and the decoder's causal self-attention (target keys).
Decoding with a key/value cache: :meth:`TransformerSeq2Seq.init_cache`, then
``decode(one_position, memory, source_mask, decode=True)`` per step; see
:func:`jdrop.models.greedy_decode` and :func:`jdrop.models.beam_search`.

References:
  Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
  Xiong et al. "On Layer Normalization in the Transformer Architecture". ICML 2020.
  Press, Wolf. "Using the Output Embedding to Improve Language Models". EACL 2017.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jdrop._dropout import dropout
from jdrop._validation import check_int, check_rate
from jdrop.nn import TransformerBlock
from jdrop.nn._mode import StochasticModule, layer_keys

__all__ = ["TransformerSeq2Seq", "sinusoidal_positions"]


def sinusoidal_positions(length: int, features: int) -> np.ndarray:
    r"""The fixed sinusoidal position encodings of Vaswani et al. (2017), ``(length, features)``.

    .. math::

       \mathrm{PE}_{p, 2i} = \sin\left(p / 10000^{2i/d}\right), \qquad
       \mathrm{PE}_{p, 2i+1} = \cos\left(p / 10000^{2i/d}\right)

    for position :math:`p` and :math:`d` = ``features``.

    Examples:
      >>> pe = sinusoidal_positions(4, 6)
      >>> pe.shape, float(pe[0, 0]), float(pe[0, 1])
      ((4, 6), 0.0, 1.0)
    """
    position = np.arange(length, dtype=np.float64)[:, None]
    rate = 1.0 / 10000.0 ** (np.arange(0, features, 2, dtype=np.float64) / features)
    table = np.zeros((length, features), np.float64)
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate[: features // 2])
    return table.astype(np.float32)


def _sinusoids(positions, features: int):
    """:func:`sinusoidal_positions` at (possibly traced) integer ``positions``, in JAX."""
    rate = 1.0 / 10000.0 ** (np.arange(0, features, 2, dtype=np.float64) / features)
    angle = positions.astype(jnp.float32)[:, None] * jnp.asarray(rate, jnp.float32)[None]
    table = jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1).reshape(len(positions), -1)
    return table[:, :features]


def _ids(x, name: str):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{name} must be integer token ids, got {name}.dtype={x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be (batch, length), got {name}.shape={x.shape}")
    return x


def _mask(mask, ids, name: str):
    """A boolean ``(B, L)`` padding mask (``None``: every position real)."""
    if mask is None:
        return jnp.ones(ids.shape, bool)
    mask = jnp.asarray(mask)
    if mask.shape != ids.shape:
        raise ValueError(
            f"{name} must have the shape of its ids {ids.shape}, got {name}.shape={mask.shape}"
        )
    return mask.astype(bool)


class TransformerSeq2Seq(StochasticModule):
    """Encoder-decoder Transformer: ``(source, target_in)`` ids -> ``(B, T, vocab)`` logits.

    ``model(source, target_in, source_mask=..., target_mask=..., key=key)`` trains (every
    dropout on; the key is split into one key per dropout site); ``deterministic=True``
    or ``model.eval()`` is inference. With ``vocab_size=V, features=512, num_heads=8,
    ffn_features=2048``, 6 + 6 layers and every rate 0.1 it is the base Transformer of
    Vaswani et al. (2017) (pre-LN here, sinusoidal positions, shared embeddings).

    Args:
      vocab_size: the joint source/target vocabulary size.
      features: model width ``d_model``.
      num_heads: attention heads (divide ``features``).
      ffn_features: feed-forward inner width.
      encoder_layers: encoder blocks.
      decoder_layers: decoder blocks.
      max_length: the longest source or target sequence the model accepts.
      embedding_dropout: drop probability of the embedding + positional sum.
      residual_dropout: drop probability of each sub-layer's output before the residual add.
      attention_dropout: drop probability of the attention weights.
      ffn_dropout: drop probability of the feed-forward activation.
      tie_embeddings: the output projection is the embedding table transposed (else a
        separate ``(features, vocab_size)`` kernel).
      activation: the feed-forward nonlinearity (ReLU as in Vaswani et al.).
      deterministic: the default mode (``False``: training); ``eval()``/``train()`` set it.
      dtype: computation dtype of the layers (``None``: the parameters').
      rngs: ``nnx.Rngs`` for the initialisation.

    Raises:
      ValueError: a size below 1, ``features`` not divisible by ``num_heads``, or a rate
        outside ``[0, 1)``, naming the argument.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = TransformerSeq2Seq(20, features=16, num_heads=2, ffn_features=32,
      ...                            encoder_layers=1, decoder_layers=1, max_length=16,
      ...                            rngs=nnx.Rngs(0))
      >>> src = jnp.array([[5, 6, 7, 2, 0]]); tgt = jnp.array([[1, 8, 9]])
      >>> logits = model(src, tgt, source_mask=src > 0, key=jax.random.key(0))
      >>> logits.shape
      (1, 3, 20)
      >>> model.eval()
      >>> memory = model.encode(src, src > 0)       # inference: no key
      >>> model.decode(tgt, memory, src > 0).shape
      (1, 3, 20)

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
      Xiong et al. "On Layer Normalization in the Transformer Architecture". ICML 2020.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        features: int = 256,
        num_heads: int = 4,
        ffn_features: int = 1024,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        max_length: int = 256,
        embedding_dropout: float = 0.1,
        residual_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        ffn_dropout: float = 0.1,
        tie_embeddings: bool = True,
        activation: Callable = jax.nn.relu,
        deterministic: bool = False,
        dtype=None,
        rngs: nnx.Rngs,
    ):
        for name, value in (("vocab_size", vocab_size), ("features", features),
                            ("num_heads", num_heads), ("ffn_features", ffn_features),
                            ("encoder_layers", encoder_layers),
                            ("decoder_layers", decoder_layers), ("max_length", max_length)):
            check_int(value, name, 1)
        if features % num_heads:
            raise ValueError(
                f"features must be divisible by num_heads, got features={features}, "
                f"num_heads={num_heads}"
            )
        rates = dict(embedding_dropout=embedding_dropout, residual_dropout=residual_dropout,
                     attention_dropout=attention_dropout, ffn_dropout=ffn_dropout)
        for name, value in rates.items():
            rates[name] = check_rate(value, name, allow_one=False)
        self.vocab_size, self.features, self.max_length = vocab_size, features, max_length
        self.embedding_dropout = rates.pop("embedding_dropout")
        self.residual_dropout = rates["residual_dropout"]
        self.attention_dropout = rates["attention_dropout"]
        self.ffn_dropout = rates["ffn_dropout"]
        self.tie_embeddings = bool(tie_embeddings)
        self.deterministic = deterministic
        # N(0, d^-1/2): the sqrt(d)-scaled input embedding has unit variance, and the tied
        # output logits h E^T start O(1) (fairseq's initialisation)
        self.embedding = nnx.Param(
            nnx.initializers.normal(features**-0.5)(rngs.params(), (vocab_size, features))
        )

        def block(cross: bool):
            return TransformerBlock(
                features, num_heads, ffn_features, cross_attention=cross, activation=activation,
                deterministic=deterministic, dtype=dtype, rngs=rngs, **rates,
            )

        self.encoder = nnx.List([block(False) for _ in range(encoder_layers)])
        self.decoder = nnx.List([block(True) for _ in range(decoder_layers)])
        self.encoder_norm = nnx.LayerNorm(features, dtype=dtype, rngs=rngs)
        self.decoder_norm = nnx.LayerNorm(features, dtype=dtype, rngs=rngs)
        if self.tie_embeddings:
            self.output_kernel = nnx.data(None)
        else:
            self.output_kernel = nnx.Param(
                nnx.initializers.lecun_normal()(rngs.params(), (features, vocab_size))
            )
        self.dtype = dtype

    # ------------------------------------------------------------------ pieces

    def _embed(self, ids, offset, key):
        """``E[ids] * sqrt(d) + PE[offset + position]`` with embedding dropout."""
        length = ids.shape[1]
        if isinstance(offset, int) and offset + length > self.max_length:
            raise ValueError(
                f"sequences of length {length} exceed max_length={self.max_length}"
            )
        h = jnp.take(self.embedding[...], ids, axis=0) * math.sqrt(self.features)
        h = h + _sinusoids(offset + jnp.arange(length), self.features)[None].astype(h.dtype)
        if self.dtype is not None:
            h = h.astype(self.dtype)
        return dropout(key, h, self.embedding_dropout, deterministic=key is None)

    def encode(self, source, source_mask=None, *, key=None, deterministic=None):
        """The encoder's output ``memory``, ``(B, S, features)``.

        Args:
          source: ``(B, S)`` integer source ids.
          source_mask: ``(B, S)`` boolean, ``True`` at real tokens (``None``: all real).
          key: PRNG key for the dropout masks (required while training).
          deterministic: inference, no dropout (default ``self.deterministic``).

        Returns:
          ``(B, S, features)`` (after the encoder's final LayerNorm).

        Raises:
          TypeError: non-integer ids. ValueError: bad shapes; training without a key.
        """
        source = _ids(source, "source")
        source_mask = _mask(source_mask, source, "source_mask")
        keys, det = layer_keys(self, key, deterministic, 1 + len(self.encoder))
        h = self._embed(source, 0, keys[0])
        attend = source_mask[:, None, None, :]  # (B, 1, 1, S): every query, real keys only
        for block_key, layer in zip(keys[1:], self.encoder, strict=True):
            h = layer(h, mask=attend, key=block_key, deterministic=det)
        return self.encoder_norm(h)

    def decode(self, target_in, memory, source_mask=None, target_mask=None, *, key=None,
               deterministic=None, decode: bool = False):
        """Next-token logits of the decoder, ``(B, T, vocab_size)``.

        Args:
          target_in: ``(B, T)`` integer ids (BOS then the target shifted right); with
            ``decode=True``, ``T == 1``: the next position after those cached.
          memory: the encoder output ``(B, S, features)``.
          source_mask: ``(B, S)`` boolean padding mask of the source (``None``: all real).
          target_mask: ``(B, T)`` boolean padding mask of ``target_in`` (``None``: all
            real; ignored with ``decode=True``, where the cache masks unseen positions).
          key: PRNG key for the dropout masks (required while training).
          deterministic: inference, no dropout (default ``self.deterministic``).
          decode: incremental decoding with the key/value cache of :meth:`init_cache`.

        Returns:
          ``(B, T, vocab_size)`` float32 logits.

        Raises:
          TypeError: non-integer ids. ValueError: bad shapes; training without a key;
            ``decode=True`` without :meth:`init_cache`.
        """
        target_in = _ids(target_in, "target_in")
        memory = jnp.asarray(memory)
        batch = target_in.shape[0]
        if memory.ndim != 3 or memory.shape[0] != batch or memory.shape[2] != self.features:
            raise ValueError(
                f"memory must be (batch={batch}, source_length, features={self.features}), "
                f"got memory.shape={memory.shape}"
            )
        source_mask = (jnp.ones(memory.shape[:2], bool) if source_mask is None
                       else jnp.asarray(source_mask).astype(bool))
        if source_mask.shape != memory.shape[:2]:
            raise ValueError(
                f"source_mask must be {memory.shape[:2]} (memory's batch and length), got "
                f"source_mask.shape={source_mask.shape}"
            )
        keys, det = layer_keys(self, key, deterministic, 1 + len(self.decoder))
        cross = source_mask[:, None, None, :]
        if decode:
            if target_in.shape[1] != 1:
                raise ValueError(
                    f"decode=True feeds one position per call, got target_in.shape="
                    f"{target_in.shape}"
                )
            cache = self.decoder[0].attention.cache_index
            if cache is None:
                raise ValueError("decode=True needs a cache: call model.init_cache(batch, "
                                 "max_length) first")
            offset, self_mask, causal = cache[...], None, False
        else:
            target_mask = _mask(target_mask, target_in, "target_mask")
            offset, self_mask, causal = 0, target_mask[:, None, None, :], True
        h = self._embed(target_in, offset, keys[0])
        for block_key, layer in zip(keys[1:], self.decoder, strict=True):
            h = layer(h, memory, mask=self_mask, context_mask=cross, is_causal=causal,
                      key=block_key, deterministic=det, decode=decode)
        h = self.decoder_norm(h)
        kernel = self.embedding[...].T if self.output_kernel is None else self.output_kernel[...]
        return (h @ kernel.astype(h.dtype)).astype(jnp.float32)

    def init_cache(self, batch_size: int, max_length: int, dtype=jnp.float32) -> None:
        """Allocates the decoder self-attention key/value caches for incremental decoding.

        Args:
          batch_size: rows decoded together (beams included).
          max_length: the most positions decoded (``<= self.max_length``).
          dtype: the cache's dtype.

        Raises:
          ValueError: sizes below 1 or ``max_length > self.max_length``.
        """
        check_int(batch_size, "batch_size", 1)
        check_int(max_length, "max_length", 1)
        if max_length > self.max_length:
            raise ValueError(
                f"max_length must be <= the model's max_length={self.max_length}, got "
                f"max_length={max_length}"
            )
        for layer in self.decoder:
            layer.attention.init_cache((batch_size, max_length, self.features), dtype)

    def __call__(self, source, target_in, *, source_mask=None, target_mask=None, key=None,
                 deterministic=None):
        """Teacher-forced logits: ``decode(target_in, encode(source))``.

        Args:
          source: ``(B, S)`` integer source ids.
          target_in: ``(B, T)`` integer decoder inputs (BOS + target shifted right).
          source_mask: ``(B, S)`` boolean, ``True`` at real source tokens.
          target_mask: ``(B, T)`` boolean, ``True`` at real ``target_in`` tokens.
          key: PRNG key (split between the encoder and the decoder).
          deterministic: inference, no dropout (default ``self.deterministic``).

        Returns:
          ``(B, T, vocab_size)`` float32 logits.

        Raises:
          TypeError: non-integer ids. ValueError: bad shapes; training without a key.
        """
        keys, det = layer_keys(self, key, deterministic, 2)
        memory = self.encode(source, source_mask, key=keys[0], deterministic=det)
        return self.decode(target_in, memory, source_mask, target_mask, key=keys[1],
                           deterministic=det)
