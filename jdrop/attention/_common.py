"""Argument checks and the canonical form every attention implementation computes on.

Public shapes follow Flax and ``jax.nn.dot_product_attention``: ``(*batch, length, heads,
head_dim)``. Internally every implementation works on ``(B, H, L, D)`` with the batch axes
flattened into ``B``; bias and mask become 4-D ``(B or 1, H or 1, Lq or 1, Lk or 1)``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._masks import keep_scale, mask_plan
from jdrop._validation import concrete_rate, normalize_axes

from ._layout import MaskLayout

__all__ = [
    "IMPLEMENTATIONS",
    "VARIANTS",
    "DropoutParams",
    "Problem",
    "canonical",
    "masked_value",
]

IMPLEMENTATIONS = ("xla", "blockwise", "pallas")
VARIANTS = ("weights", "dropkey", "head")


def masked_value(dtype=jnp.float32):
    """The logit given to masked positions: the dtype's most negative finite value (as JAX)."""
    return np.asarray(jnp.finfo(dtype).min, dtype)


@dataclasses.dataclass(frozen=True)
class Problem:
    """Static facts of one attention call (hashable: used as a ``custom_vjp`` static arg)."""

    batch_shape: tuple[int, ...]
    heads: int
    q_len: int
    kv_len: int
    head_dim: int
    value_dim: int
    scale: float
    is_causal: bool
    variant: str
    dropout: bool
    layout: MaskLayout

    @property
    def batch(self) -> int:
        return math.prod(self.batch_shape)

    @property
    def weights_shape(self) -> tuple[int, ...]:
        return (*self.batch_shape, self.heads, self.q_len, self.kv_len)


@dataclasses.dataclass(frozen=True)
class DropoutParams:
    """The traced dropout parameters: key words, threshold, live flag, ``1 / (1 - rate)``."""

    words: jax.Array
    threshold: jax.Array
    live: jax.Array
    inv_keep: jax.Array


jax.tree_util.register_dataclass(
    DropoutParams, data_fields=["words", "threshold", "live", "inv_keep"], meta_fields=[]
)


def _check_array(x, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype, got {name}.dtype={x.dtype}")
    if x.ndim < 3:
        raise ValueError(
            f"{name} must have shape (*batch, length, heads, head_dim), got {name}.shape="
            f"{x.shape}"
        )
    return x


def _to_4d(x, name: str, weights_shape: tuple[int, ...], dtype) -> jax.Array | None:
    """``x`` broadcastable to ``weights_shape`` as ``(B|1, H|1, Lq|1, Lk|1)``."""
    if x is None:
        return None
    x = jnp.asarray(x)
    if dtype is bool and x.dtype != jnp.bool_:
        raise TypeError(
            f"{name} must be a boolean array (True = attend), got {name}.dtype={x.dtype}"
        )
    if dtype is not bool and not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype, got {name}.dtype={x.dtype}")
    n = len(weights_shape)
    try:
        jnp.broadcast_shapes(x.shape, weights_shape)
        if x.ndim > n or jnp.broadcast_shapes(x.shape, weights_shape) != weights_shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{name} must broadcast to the weights' shape (*batch, heads, q_len, kv_len) = "
            f"{weights_shape}, got {name}.shape={x.shape}"
        ) from None
    x = x.reshape((1,) * (n - x.ndim) + x.shape)
    batch = x.shape[: n - 3]
    if all(d == 1 for d in batch):
        return x.reshape((1,) + x.shape[n - 3:])
    x = jnp.broadcast_to(x, weights_shape[: n - 3] + x.shape[n - 3:])
    return x.reshape((math.prod(weights_shape[: n - 3]),) + x.shape[n - 3:])


def canonical(
    query, key, value, *, bias, mask, dropout_key, rate, is_causal, scale, broadcast_dims,
    variant, deterministic,
):
    """Checks the arguments; returns ``(problem, q, k, v, bias, mask, params)``.

    ``q, k, v`` are ``(B, H, L, D)``; ``bias``/``mask`` 4-D or ``None``; ``params`` a
    :class:`DropoutParams` or ``None`` when no dropout is applied.
    """
    query = _check_array(query, "query")
    key = _check_array(key, "key")
    value = _check_array(value, "value")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(
            "query, key and value must have one dtype, got "
            f"{query.dtype}, {key.dtype}, {value.dtype}"
        )
    if key.shape[:-1] != value.shape[:-1]:
        raise ValueError(
            "key and value must agree on (*batch, kv_len, heads), got key.shape="
            f"{key.shape}, value.shape={value.shape}"
        )
    if query.ndim != key.ndim or query.shape[:-3] != key.shape[:-3]:
        raise ValueError(
            "query and key must have the same batch axes, got query.shape="
            f"{query.shape}, key.shape={key.shape}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query and key must have the same head_dim, got {query.shape[-1]} and {key.shape[-1]}"
        )
    *batch_shape, q_len, heads, head_dim = query.shape
    kv_len, kv_heads = key.shape[-3], key.shape[-2]
    if kv_heads != heads and (kv_heads == 0 or heads % kv_heads):
        raise ValueError(
            f"key/value heads ({kv_heads}) must equal or divide query heads ({heads}) "
            "(grouped-query attention)"
        )
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got variant={variant!r}")
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    elif not isinstance(scale, int | float | np.floating) or isinstance(scale, bool):
        raise TypeError(f"scale must be a Python float or None, got scale={scale!r}")
    weights_shape = (*batch_shape, heads, q_len, kv_len)
    n = len(weights_shape)
    dims = normalize_axes(broadcast_dims, n, "broadcast_dims")
    if variant == "head":
        dims = tuple(sorted(set(dims) | {n - 2, n - 1}))
    rate_value = concrete_rate(rate)
    dropout = not deterministic and rate_value != 0.0
    params = None
    if dropout:
        if dropout_key is None:
            raise ValueError(
                f"dot_product_attention needs dropout_key when rate={rate!r} > 0: pass "
                "dropout_key=jax.random.key(seed), or rate=0.0 / deterministic=True for "
                "inference"
            )
        plan = mask_plan(dropout_key, rate)
        inv_keep = jnp.asarray(keep_scale(rate, jnp.float32))
        params = DropoutParams(
            plan.words, jnp.asarray(plan.threshold, jnp.uint32), jnp.asarray(plan.live),
            inv_keep,
        )
    problem = Problem(
        tuple(batch_shape), heads, q_len, kv_len, head_dim, value.shape[-1], float(scale),
        bool(is_causal), variant, dropout, MaskLayout.create(weights_shape, dims),
    )
    batch = problem.batch

    def heads_first(x, h):
        x = x.reshape((batch,) + x.shape[-3:]).transpose(0, 2, 1, 3)
        return jnp.repeat(x, heads // h, axis=1) if h != heads else x

    q = heads_first(query, heads)
    k = heads_first(key, kv_heads)
    v = heads_first(value, kv_heads)
    bias4 = _to_4d(bias, "bias", weights_shape, float)
    mask4 = _to_4d(mask, "mask", weights_shape, bool)
    return problem, q, k, v, bias4, mask4, params


def output(problem: Problem, out: jax.Array, dtype) -> jax.Array:
    """``(B, H, Lq, Dv)`` back to ``(*batch, Lq, H, Dv)`` in ``dtype``."""
    out = out.transpose(0, 2, 1, 3).astype(dtype)
    return out.reshape((*problem.batch_shape,) + out.shape[1:])
