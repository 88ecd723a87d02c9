"""Multi-head attention and a pre-LN Transformer block with every dropout named.

:class:`MultiHeadAttention` is a drop-in for ``flax.nnx.MultiHeadAttention``'s common
arguments (``num_heads, in_features, qkv_features, out_features, num_kv_heads,
in_kv_features, dropout_rate, broadcast_dropout, use_bias, decode, rngs``; the same
``query``/``key``/``value``/``out`` parameters) whose attention runs on
:func:`jdrop.attention.dot_product_attention`: position-keyed masks, no ``(q, kv)``
tensor stored when the blockwise path is used. Like every jdrop layer it is called with
the key first-class: ``mha(x, key=key)``; ``deterministic=True`` or ``mha.eval()`` is
inference, and training without a key (and without ``rngs`` holding a ``"dropout"``
stream) is a ``ValueError``.

:class:`TransformerBlock` is the pre-LN block (Xiong et al. 2020) with the three dropouts
of Vaswani et al. (2017) as separate rates: on the attention weights
(``attention_dropout``), on each sub-layer's output before the residual add
(``residual_dropout``) and on the feed-forward activation (``ffn_dropout``).

References:
  Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
  Xiong et al. "On Layer Normalization in the Transformer Architecture". ICML 2020.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jdrop._dropout import dropout
from jdrop._keys import split_key
from jdrop._validation import concrete_rate
from jdrop.attention import dot_product_attention
from jdrop.nn._mode import is_deterministic, missing_key_error

__all__ = ["FeedForward", "MultiHeadAttention", "TransformerBlock"]

_KERNEL_INIT = nnx.initializers.lecun_normal()
_BIAS_INIT = nnx.initializers.zeros_init()


def _check_rate(rate, name: str) -> float:
    value = concrete_rate(rate, name)
    if value is None:
        raise TypeError(f"{name} must be a concrete number when building a layer, got {rate!r}")
    return value


def _stream(rngs, collection: str):
    """The dropout stream kept from construction ``rngs`` (a fork, as Flax's layers do)."""
    if isinstance(rngs, nnx.Rngs) and collection in rngs:
        return rngs[collection].fork()
    return nnx.data(None)


def _training_key(module, key, deterministic, rngs, rate: float):
    """The dropout key of a call: ``None`` in inference or at rate 0; else the call's key,
    a draw from the call's ``rngs``, or from the stream kept at construction."""
    if is_deterministic(module, deterministic) or rate == 0.0:
        return None
    if key is not None:
        return key
    if isinstance(rngs, nnx.Rngs):
        return rngs[module.rng_collection]()
    if isinstance(rngs, nnx.RngStream):
        return rngs()
    if module.rngs is not None:
        return module.rngs()
    raise missing_key_error(module)


class MultiHeadAttention(nnx.Module):
    r"""Multi-head attention with jdrop's attention dropout (NNX).

    .. math::

       \mathrm{out} = W_o \operatorname{concat}_h\left[
       \operatorname{dropout}\!\left(\operatorname{softmax}\!\left(
       \frac{q_h k_h^\top}{\sqrt{d}} + \mathrm{mask}\right)\right) v_h\right]

    with :math:`q = W_q x_q`, :math:`k = W_k x_k`, :math:`v = W_v x_v` and head dimension
    :math:`d`; the dropout is :func:`jdrop.attention.dot_product_attention`'s (same bits in
    every implementation).

    Differences from ``flax.nnx.MultiHeadAttention``: ``broadcast_dropout`` defaults to
    ``False`` (an independent mask per example and head, as in PyTorch; Flax's ``True``
    shares one mask across batch and heads); the key is a call argument (``key=``), and
    ``rngs`` at construction or call also work as in Flax.

    Decoding (``decode=True``) keeps a key/value cache as Flax does: call
    :meth:`init_cache` with the full ``(batch, max_length, features)`` shape, then feed
    one position per call; each call attends to the positions cached so far.

    Args:
      num_heads: number of heads.
      in_features: input features (of the queries, and of keys/values unless
        ``in_kv_features``).
      qkv_features: query/key/value features (all heads; default ``in_features``).
      out_features: output features (default ``in_features``).
      num_kv_heads: key/value heads for grouped-query attention (divides ``num_heads``;
        default ``num_heads``).
      in_kv_features: key/value input features (default ``in_features``).
      dropout_rate: attention-weights drop probability.
      broadcast_dropout: share one mask across batch and heads (Flax's default).
      attention_variant: ``"weights"``, ``"dropkey"`` or ``"head"`` (see
        :func:`jdrop.attention.dot_product_attention`).
      implementation: ``None``, ``"xla"``, ``"blockwise"`` or ``"pallas"``.
      deterministic: default mode (``False``: training); ``eval()``/``train()`` set it.
      use_bias: biases in the projections.
      decode: autoregressive decoding with a key/value cache.
      dtype, param_dtype, kernel_init, bias_init: as ``flax.nnx.LinearGeneral``.
      rng_collection: the ``nnx.Rngs`` stream dropout keys are drawn from.
      rngs: ``nnx.Rngs`` for the parameters (and, when it has a ``rng_collection``
        stream, the default dropout keys).

    Raises:
      ValueError: ``qkv_features`` not divisible by ``num_heads``, ``num_kv_heads`` not
        dividing ``num_heads``, a rate outside ``[0, 1]``; at call: training without a key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> mha = MultiHeadAttention(4, 32, dropout_rate=0.1, rngs=nnx.Rngs(0))
      >>> x = jnp.ones((2, 10, 32))
      >>> mha(x, key=jax.random.key(1)).shape
      (2, 10, 32)
      >>> mha.eval(); mha(x).shape                    # inference: no key needed
      (2, 10, 32)

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
    """

    def __init__(
        self,
        num_heads: int,
        in_features: int,
        qkv_features: int | None = None,
        out_features: int | None = None,
        num_kv_heads: int | None = None,
        in_kv_features: int | None = None,
        *,
        dropout_rate: float = 0.0,
        broadcast_dropout: bool = False,
        attention_variant: str = "weights",
        implementation: str | None = None,
        deterministic: bool | None = False,
        use_bias: bool = True,
        decode: bool = False,
        dtype=None,
        param_dtype=jnp.float32,
        kernel_init=_KERNEL_INIT,
        bias_init=_BIAS_INIT,
        rng_collection: str = "dropout",
        rngs: nnx.Rngs,
    ):
        qkv_features = in_features if qkv_features is None else qkv_features
        out_features = in_features if out_features is None else out_features
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        in_kv_features = in_features if in_kv_features is None else in_kv_features
        if num_heads < 1 or qkv_features % num_heads:
            raise ValueError(
                f"qkv_features ({qkv_features}) must be divisible by num_heads ({num_heads})"
            )
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(
                f"num_kv_heads ({num_kv_heads}) must divide num_heads ({num_heads})"
            )
        head_dim = qkv_features // num_heads
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.in_features, self.qkv_features, self.out_features = (
            in_features, qkv_features, out_features,
        )
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        self.broadcast_dropout = broadcast_dropout
        self.attention_variant = attention_variant
        self.implementation = implementation
        self.deterministic = deterministic
        self.decode = decode
        self.rng_collection = rng_collection
        common = dict(
            use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, kernel_init=kernel_init,
            bias_init=bias_init, rngs=rngs,
        )
        self.query = nnx.LinearGeneral(in_features, (num_heads, head_dim), **common)
        self.key = nnx.LinearGeneral(in_kv_features, (num_kv_heads, head_dim), **common)
        self.value = nnx.LinearGeneral(in_kv_features, (num_kv_heads, head_dim), **common)
        self.out = nnx.LinearGeneral((num_heads, head_dim), out_features, axis=(-2, -1), **common)
        self.rngs = _stream(rngs, rng_collection)
        self.cached_key = nnx.data(None)
        self.cached_value = nnx.data(None)
        self.cache_index = nnx.data(None)

    def init_cache(self, input_shape, dtype=jnp.float32):
        """Allocates the decoding cache for inputs of ``(*batch, max_length, features)``."""
        shape = tuple(input_shape[:-1]) + (self.num_kv_heads, self.head_dim)
        self.cached_key = nnx.Cache(jnp.zeros(shape, dtype))
        self.cached_value = nnx.Cache(jnp.zeros(shape, dtype))
        self.cache_index = nnx.Cache(jnp.array(0, jnp.int32))

    def _decode_step(self, k, v, mask):
        if self.cached_key is None:
            raise ValueError("decode=True needs a cache: call init_cache(input_shape) first")
        *batch, max_length, heads, dim = self.cached_key.shape
        if k.shape != (*batch, 1, heads, dim):
            raise ValueError(
                f"decoding feeds one position per call: expected key shape "
                f"{(*batch, 1, heads, dim)}, got {k.shape}"
            )
        index = self.cache_index[...]
        start = (0,) * len(batch) + (index, 0, 0)
        k = jax.lax.dynamic_update_slice(
            self.cached_key[...], k.astype(self.cached_key.dtype), start
        )
        v = jax.lax.dynamic_update_slice(
            self.cached_value[...], v.astype(self.cached_value.dtype), start
        )
        self.cached_key[...] = k
        self.cached_value[...] = v
        self.cache_index[...] = index + 1
        seen = jnp.broadcast_to(jnp.arange(max_length) <= index, (*batch, 1, 1, max_length))
        mask = seen if mask is None else mask & seen
        return k, v, mask

    def __call__(
        self,
        inputs_q,
        inputs_k=None,
        inputs_v=None,
        *,
        mask=None,
        key=None,
        deterministic: bool | None = None,
        rngs=None,
        is_causal: bool = False,
        decode: bool | None = None,
        bias=None,
    ):
        """Attends from ``inputs_q`` to ``inputs_k``/``inputs_v`` (default: self-attention).

        Args:
          inputs_q: ``(*batch, q_len, in_features)``.
          inputs_k: ``(*batch, kv_len, in_kv_features)``; default ``inputs_q``.
          inputs_v: default ``inputs_k``.
          mask: boolean, broadcastable to ``(*batch, num_heads, q_len, kv_len)``;
            ``True`` where attention is allowed.
          key: PRNG key for the attention-dropout mask.
          deterministic: overrides ``self.deterministic`` when not ``None``.
          rngs: ``nnx.Rngs``/``nnx.RngStream`` used when ``key`` is ``None`` (Flax style).
          is_causal: causal self-attention.
          decode: overrides ``self.decode``.
          bias: additive logits bias (e.g. relative positions), broadcastable like ``mask``.

        Returns:
          ``(*batch, q_len, out_features)``.

        Raises:
          ValueError: training with dropout but no key / rngs; decoding without a cache.
        """
        inputs_k = inputs_q if inputs_k is None else inputs_k
        inputs_v = inputs_k if inputs_v is None else inputs_v
        dropout_key = _training_key(self, key, deterministic, rngs, self.dropout_rate)
        q = self.query(inputs_q)
        k = self.key(inputs_k)
        v = self.value(inputs_v)
        if self.decode if decode is None else decode:
            k, v, mask = self._decode_step(k, v, mask)
        batch_axes = q.ndim - 3
        dims = tuple(range(batch_axes + 1)) if self.broadcast_dropout else ()
        out = dot_product_attention(
            q, k.astype(q.dtype), v.astype(q.dtype), dropout_key=dropout_key,
            rate=self.dropout_rate, bias=bias, mask=mask, is_causal=is_causal,
            broadcast_dims=dims, variant=self.attention_variant,
            deterministic=dropout_key is None, implementation=self.implementation,
        )
        return self.out(out)


class FeedForward(nnx.Module):
    r"""Position-wise feed-forward :math:`W_2 \operatorname{dropout}(\phi(W_1 x + b_1)) + b_2`.

    :math:`\phi` is ``activation``; the dropout is :func:`jdrop.dropout` at ``dropout_rate``.

    Args:
      features: input and output features.
      hidden_features: the inner width (``4 * features`` in Vaswani et al.).
      dropout_rate: drop probability on the activation (``ffn_dropout``).
      activation: the nonlinearity (default ``jax.nn.gelu``).
      deterministic: default mode; ``eval()``/``train()`` set it.
      rngs: ``nnx.Rngs`` for the parameters.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> ffn = FeedForward(8, 32, dropout_rate=0.1, rngs=nnx.Rngs(0))
      >>> ffn(jnp.ones((2, 8)), key=jax.random.key(0)).shape
      (2, 8)

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017, section 3.3.
    """

    def __init__(
        self,
        features: int,
        hidden_features: int,
        *,
        dropout_rate: float = 0.0,
        activation: Callable = jax.nn.gelu,
        deterministic: bool | None = False,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.dropout_rate = _check_rate(dropout_rate, "dropout_rate")
        self.activation = activation
        self.deterministic = deterministic
        self.rng_collection = "dropout"
        self.rngs = _stream(rngs, "dropout")
        self.hidden = nnx.Linear(
            features, hidden_features, dtype=dtype, param_dtype=param_dtype, rngs=rngs
        )
        self.output = nnx.Linear(
            hidden_features, features, dtype=dtype, param_dtype=param_dtype, rngs=rngs
        )

    def __call__(self, x, *, key=None, deterministic: bool | None = None):
        """Applies the feed-forward network; ``key`` drives the activation dropout."""
        key = _training_key(self, key, deterministic, None, self.dropout_rate)
        h = self.activation(self.hidden(x))
        h = dropout(key, h, self.dropout_rate, deterministic=key is None)
        return self.output(h)


class TransformerBlock(nnx.Module):
    r"""Pre-LN Transformer block: self-attention, optional cross-attention, feed-forward.

    .. math::

       h &= x + \mathrm{drop}(\mathrm{SelfAttn}(\mathrm{LN}(x))),\\
       h &\leftarrow h + \mathrm{drop}(\mathrm{CrossAttn}(\mathrm{LN}(h), c))
       \quad \text{(decoder blocks only)},\\
       y &= h + \mathrm{drop}(\mathrm{FFN}(\mathrm{LN}(h))),

    with :math:`\mathrm{drop}` at ``residual_dropout`` on each sub-layer's output,
    ``attention_dropout`` on the attention weights inside each attention and
    ``ffn_dropout`` on the feed-forward activation (:class:`FeedForward`).

    Each call splits its key into one key per dropout site (never one key twice);
    ``deterministic=True`` or ``block.eval()`` turns every dropout off.

    Args:
      features: model width ``d_model``.
      num_heads: attention heads.
      ffn_features: feed-forward inner width (default ``4 * features``).
      attention_dropout: drop probability of the attention weights.
      residual_dropout: drop probability of each sub-layer's output before the add.
      ffn_dropout: drop probability of the feed-forward activation.
      cross_attention: add an encoder-decoder attention sub-layer (call with
        ``context=``).
      attention_variant: ``"weights"``, ``"dropkey"`` or ``"head"``.
      broadcast_dropout: share attention masks across batch and heads.
      activation: feed-forward nonlinearity (default GELU).
      implementation: attention implementation (see
        :func:`jdrop.attention.dot_product_attention`).
      deterministic: default mode.
      decode: self-attention with a key/value cache (see :class:`MultiHeadAttention`).
      rngs: ``nnx.Rngs`` for the parameters.

    Raises:
      ValueError: rates outside ``[0, 1]``; at call: training without a key when any
        rate is positive.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> block = TransformerBlock(32, 4, attention_dropout=0.1, residual_dropout=0.1,
      ...                          ffn_dropout=0.1, rngs=nnx.Rngs(0))
      >>> x = jnp.ones((2, 12, 32))
      >>> block(x, is_causal=True, key=jax.random.key(0)).shape
      (2, 12, 32)
      >>> bool(jnp.allclose(block(x, deterministic=True), block(x, deterministic=True)))
      True

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017 (residual dropout, 5.4).
      Xiong et al. "On Layer Normalization in the Transformer Architecture". ICML 2020.
    """

    def __init__(
        self,
        features: int,
        num_heads: int,
        ffn_features: int | None = None,
        *,
        attention_dropout: float = 0.0,
        residual_dropout: float = 0.0,
        ffn_dropout: float = 0.0,
        cross_attention: bool = False,
        attention_variant: str = "weights",
        broadcast_dropout: bool = False,
        activation: Callable = jax.nn.gelu,
        implementation: str | None = None,
        deterministic: bool | None = False,
        decode: bool = False,
        dtype=None,
        param_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.residual_dropout = _check_rate(residual_dropout, "residual_dropout")
        self.deterministic = deterministic
        self.rng_collection = "dropout"
        self.rngs = _stream(rngs, "dropout")
        attention = dict(
            dropout_rate=attention_dropout, broadcast_dropout=broadcast_dropout,
            attention_variant=attention_variant, implementation=implementation,
            deterministic=deterministic, dtype=dtype, param_dtype=param_dtype, rngs=rngs,
        )
        norm = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.norm_attention = nnx.LayerNorm(features, **norm)
        self.attention = MultiHeadAttention(num_heads, features, decode=decode, **attention)
        if cross_attention:
            self.norm_cross = nnx.LayerNorm(features, **norm)
            self.cross = MultiHeadAttention(num_heads, features, **attention)
        else:
            self.norm_cross = nnx.data(None)
            self.cross = nnx.data(None)
        self.norm_ffn = nnx.LayerNorm(features, **norm)
        self.ffn = FeedForward(
            features, ffn_features or 4 * features, dropout_rate=ffn_dropout,
            activation=activation, deterministic=deterministic, dtype=dtype,
            param_dtype=param_dtype, rngs=rngs,
        )

    def _rates(self) -> tuple[float, ...]:
        rates = [self.residual_dropout, self.attention.dropout_rate, self.ffn.dropout_rate]
        if self.cross is not None:
            rates.append(self.cross.dropout_rate)
        return tuple(rates)

    def __call__(
        self,
        x,
        context=None,
        *,
        mask=None,
        context_mask=None,
        is_causal: bool = False,
        key=None,
        deterministic: bool | None = None,
        decode: bool | None = None,
    ):
        """Applies the block.

        Args:
          x: ``(*batch, length, features)``.
          context: encoder output for cross-attention, ``(*batch, src_len, features)``.
          mask: self-attention mask (``True`` = attend), broadcastable to
            ``(*batch, heads, length, length)``.
          context_mask: cross-attention mask, ``(*batch, heads, length, src_len)``.
          is_causal: causal self-attention (decoder / language model).
          key: PRNG key; split into one key per dropout site.
          deterministic: overrides ``self.deterministic`` when not ``None``.
          decode: overrides the self-attention's ``decode``.

        Returns:
          ``(*batch, length, features)``.

        Raises:
          ValueError: training without a key when a rate is positive; ``context`` missing
            for a cross-attention block.
        """
        if is_deterministic(self, deterministic) or not any(self._rates()):
            key, mode = None, True
        else:
            if key is None:
                if self.rngs is None:
                    raise missing_key_error(self)
                key = self.rngs()
            mode = False
        k_attn, k_res1, k_cross, k_res2, k_ffn, k_res3 = split_key(key, 6)
        rate = self.residual_dropout

        def residual(k, h):
            return dropout(k, h, rate, deterministic=k is None)

        h = self.norm_attention(x)
        h = self.attention(
            h, mask=mask, is_causal=is_causal, key=k_attn, deterministic=mode, decode=decode
        )
        x = x + residual(k_res1, h)
        if self.cross is not None:
            if context is None:
                raise ValueError("this block has cross_attention=True: pass context=")
            h = self.cross(
                self.norm_cross(x), context, mask=context_mask, key=k_cross, deterministic=mode
            )
            x = x + residual(k_res2, h)
        h = self.ffn(self.norm_ffn(x), key=k_ffn, deterministic=mode)
        return x + residual(k_res3, h)
