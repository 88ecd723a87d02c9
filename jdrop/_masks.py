"""The one random-bit and Bernoulli-mask generator that every dropout variant uses.

A counter-based generator: the 32 random bits of the element at position ``i`` are a keyed
hash of ``i`` itself,

    bits(i) = mix(mix(i_lo ^ k0) ^ (k1 + golden * i_hi)),

where ``(k0, k1) = jax.random.bits(key, (2,), uint32)`` (threefry, computed once per call),
``i_lo``/``i_hi`` are the element's linear index split in two 32-bit words, and ``mix`` is
Chris Wellons' ``lowbias32`` integer finaliser (two multiply-xorshift rounds). This is the
same idea as PyTorch's and FlashAttention's Philox masks (Salmon et al. 2011): because the
bits depend on the key and the element's position only,

* a sharded array gets exactly the mask of the unsharded one, with no communication
  (XLA partitions the position ``iota`` like any other elementwise op);
* arrays with more than ``2**32`` elements use the high word ``i_hi`` and never repeat;
* the whole mask fuses into the consumer's loop: a dropout costs about as much as
  ``x * 2`` instead of ``jax.random.bernoulli``'s 20-round threefry per element.

Drop decisions compare all 32 bits with a threshold, so the realised drop probability is
``floor(fl32(rate) * 2**32) / 2**32``: within ``2**-24 * rate + 2**-32`` of ``rate``
(``fl32`` is rounding to float32, which makes concrete and traced rates give the same bits).

``impl="jax"`` selects the ``jax.random.bernoulli`` path instead (bit-exact with
``jax.random``; slower).

References:
  Salmon, Moraes, Dror, Shaw. "Parallel random numbers: as easy as 1, 2, 3". SC 2011.
  Wellons. "Prospecting for hash functions". 2018 (``lowbias32``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._keys import as_key, key_words
from jdrop._validation import concrete_rate, require_key

__all__ = [
    "MaskPlan",
    "compute_dtype",
    "drop_threshold",
    "keep_from_plan",
    "keep_mask",
    "keep_scale",
    "mask_plan",
    "mask_shape",
    "maskless_output",
    "normal",
    "random_bits",
    "shard_block",
    "uniform",
]

IMPLS = ("counter", "jax")
_TWO_32 = 2**32
_M1 = np.uint32(0x7FEB352D)
_M2 = np.uint32(0x846CA68B)
_GOLDEN = np.uint32(0x9E3779B9)
_LARGEST_F32_BELOW_2_32 = np.float32(4294967040.0)


def _mix(x: jax.Array) -> jax.Array:
    """``lowbias32``: a bijective 32-bit finaliser with near-ideal avalanche."""
    x = x ^ (x >> np.uint32(16))
    x = x * _M1
    x = x ^ (x >> np.uint32(15))
    x = x * _M2
    return x ^ (x >> np.uint32(16))


def _hash(words: jax.Array, lo: jax.Array, hi: jax.Array | None) -> jax.Array:
    """Keyed hash of the counter ``(lo, hi)``; a bijection of ``lo`` for each ``hi``."""
    inner = _mix(lo ^ words[0])
    outer_key = words[1] if hi is None else words[1] + _GOLDEN * hi
    return _mix(inner ^ outer_key)


def _linear_index(shape: Sequence[int], axes: range, global_shape=None,
                  start=None) -> jax.Array | None:
    """uint32 row-major linear index over ``axes`` of ``shape`` (broadcast to ``shape``).

    With ``global_shape`` and ``start``, ``shape`` is the block of a ``global_shape`` array
    starting at ``start``: the index is the element's index in the global array.
    """
    global_shape = shape if global_shape is None else global_shape
    index = None
    stride = 1
    for axis in reversed(axes):
        size = global_shape[axis]
        offset = None if start is None else start[axis]
        if size > 1:
            term = jax.lax.broadcasted_iota(jnp.uint32, shape, axis)
            if offset is not None:
                if isinstance(offset, int | np.integer):
                    offset = np.uint32(offset)  # jnp.asarray would overflow int32 at 2**31
                term = term + jnp.asarray(offset).astype(jnp.uint32)
            if stride > 1:
                term = term * np.uint32(stride)
            index = term if index is None else index + term
        stride *= size
    return index


def counter_split(shape: tuple[int, ...]) -> int:
    """The first axis whose index counts in the low 32-bit word (axes before it: ``hi``).

    The low word covers the longest suffix of axes holding at most ``2**32`` elements.

    Raises:
      ValueError: for an axis of ``2**32`` or more elements, or more than ``2**64`` in all.
    """
    for axis, size in enumerate(shape):
        if size >= _TWO_32:
            raise ValueError(f"axis {axis} has {size} elements; at most 2**32 - 1 are supported")
    split, suffix = len(shape), 1
    while split > 0 and suffix * shape[split - 1] <= _TWO_32:
        split -= 1
        suffix *= shape[split]
    if math.prod(shape[:split]) > _TWO_32:
        raise ValueError(f"shape {shape} has more than 2**64 elements")
    return split


def _counters(shape: tuple[int, ...], global_shape=None,
              start=None) -> tuple[jax.Array, jax.Array | None]:
    """Splits every element's linear index into 32-bit words ``(lo, hi)``.

    ``lo`` is the index over the longest suffix of axes holding at most ``2**32`` elements,
    ``hi`` the index over the remaining prefix (``None`` when the array fits in ``lo``).
    With ``global_shape``/``start`` (a block of a larger array), the global array's words.
    """
    local_shape = shape
    if global_shape is not None:
        shape = global_shape
    split = counter_split(shape)
    lo = _linear_index(local_shape, range(split, len(shape)), shape, start)
    if lo is None:
        lo = jnp.zeros(local_shape, jnp.uint32)
    hi = _linear_index(local_shape, range(split), shape, start) if split > 0 else None
    return lo, hi


def counter_bits(words: jax.Array, lo: jax.Array, hi: jax.Array | None = None) -> jax.Array:
    """The generator's bits for explicit counters: the block form of :func:`random_bits`.

    ``random_bits(key, shape)[idx]`` equals ``counter_bits(key_words(key), lo, hi)`` where
    ``(lo, hi)`` are the 32-bit words of ``idx``'s linear index as :func:`_counters` splits
    it. Kernels that compute a block of a larger array (attention) call this with the
    block's global counters, so any block order gives the bits of the whole array.
    """
    return _hash(words, lo, hi)


def _bits_from_words(words: jax.Array, shape: tuple[int, ...], block=None) -> jax.Array:
    lo, hi = _counters(shape, *(block or (None, None)))
    return _hash(words, lo, hi)


def _block(shape: tuple[int, ...], global_shape, start):
    """Checked ``(global_shape, start)`` of a block, or ``None`` for a whole array."""
    if global_shape is None and start is None:
        return None
    if global_shape is None or start is None:
        raise ValueError("global_shape and start must be given together (see shard_block)")
    global_shape = _shape(global_shape)
    if len(global_shape) != len(shape) or len(start) != len(shape):
        raise ValueError(
            f"global_shape and start must have one entry per axis of shape={shape}, got "
            f"global_shape={global_shape}, start={start!r}"
        )
    if any(g < s for g, s in zip(global_shape, shape, strict=True)):
        raise ValueError(f"global_shape={global_shape} is smaller than shape={shape}")
    for s, size, g in zip(start, shape, global_shape, strict=True):
        if isinstance(s, int | np.integer) and not 0 <= s <= g - size:
            raise ValueError(
                f"start={tuple(start)} puts the block of shape={shape} outside "
                f"global_shape={global_shape}"
            )
    return global_shape, tuple(start)


def shard_block(local_shape: Sequence[int], spec) -> tuple[tuple[int, ...], tuple]:
    """``(global_shape, start)`` of this device's block inside ``jax.shard_map``.

    Pass them to :func:`keep_mask` / :func:`random_bits` / :func:`jdrop.dropout` to draw,
    inside ``shard_map``, exactly the local block of the mask that the unsharded array
    (or ``jit`` with a ``NamedSharding``) gets from the same key: counters are global
    element indices, not local ones. Without them every shard would get the same mask.

    Args:
      local_shape: the shape of the local block (``x.shape`` inside ``shard_map``).
      spec: the ``PartitionSpec`` the array was split with (its ``in_specs`` entry).

    Returns:
      ``(global_shape, start)``: the unsharded shape and the block's first index per
      axis (traced ``axis_index`` products).

    Examples:
      >>> import jax, jax.numpy as jnp, numpy as np
      >>> from jax.sharding import Mesh, PartitionSpec as P
      >>> mesh = Mesh(np.array(jax.devices()[:2]), ("d",))
      >>> def local(x):
      ...     g, s = shard_block(x.shape, P("d"))
      ...     return keep_mask(jax.random.key(0), x.shape, 0.5, global_shape=g, start=s)
      >>> f = jax.shard_map(local, mesh=mesh, in_specs=P("d"), out_specs=P("d"))
      >>> bool((f(jnp.ones(8)) == keep_mask(jax.random.key(0), (8,), 0.5)).all())
      True
    """
    local_shape = _shape(local_shape)
    global_shape, start = [], []
    for axis, size in enumerate(local_shape):
        names = spec[axis] if axis < len(spec) else None
        if names is None:
            global_shape.append(size)
            start.append(0)
            continue
        names = (names,) if isinstance(names, str) else tuple(names)
        index, count = 0, 1
        for name in names:  # major to minor, as PartitionSpec orders them
            n = jax.lax.psum(1, name)
            index = index * n + jax.lax.axis_index(name)
            count *= n
        global_shape.append(size * count)
        start.append(index * size)
    return tuple(global_shape), tuple(start)


def random_bits(key, shape: Sequence[int], *, global_shape=None, start=None) -> jax.Array:
    r"""Counter-based uniform ``uint32`` bits: element ``i`` depends on ``key`` and ``i`` only.

    The bits of the element at linear index :math:`i = 2^{32} i_\mathrm{hi} + i_\mathrm{lo}`
    are a keyed hash of :math:`i` itself,

    .. math::

       \mathrm{bits}(i) = \mathrm{mix}\big(\mathrm{mix}(i_\mathrm{lo} \oplus k_0)
       \oplus (k_1 + \gamma\, i_\mathrm{hi})\big) \bmod 2^{32},

    with :math:`(k_0, k_1)` two words drawn once per call from ``key`` (threefry),
    :math:`\gamma` the 32-bit golden-ratio constant and :math:`\mathrm{mix}` Wellons'
    ``lowbias32`` finaliser (two multiply-xorshift rounds), as in Philox (Salmon et al.
    2011): the bits of any block can be computed without the rest.

    Args:
      key: a typed key (``jax.random.key``) or a legacy ``uint32[2]`` key.
      shape: the output shape.
      global_shape, start: draw the block of shape ``shape`` starting at ``start`` of the
        ``global_shape`` array's bits (inside ``shard_map``: see :func:`shard_block`).

    Returns:
      A ``uint32`` array of ``shape``.

    Examples:
      >>> import jax
      >>> bits = random_bits(jax.random.key(0), (2, 3))
      >>> bits.dtype, bits.shape
      (dtype('uint32'), (2, 3))
      >>> bool((bits == random_bits(jax.random.key(0), (2, 3))).all())
      True
    """
    shape = _shape(shape)
    return _bits_from_words(key_words(key), shape, _block(shape, global_shape, start))


def uniform(key, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    r"""Uniform samples in the open interval (0, 1) from :func:`random_bits`.

    :math:`u = \left(\lfloor \mathrm{bits} / 2^8 \rfloor + \tfrac12\right) / 2^{24}`: 24
    random bits, never exactly 0 or 1, so :math:`\log u` and :math:`\log(1 - u)` are finite.

    Examples:
      >>> import jax
      >>> u = uniform(jax.random.key(0), (1000,))
      >>> bool((u > 0).all() and (u < 1).all())
      True
    """
    bits = random_bits(key, shape)
    u = ((bits >> np.uint32(8)).astype(jnp.float32) + np.float32(0.5)) * np.float32(2.0**-24)
    return u.astype(dtype)


def normal(key, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    r"""Standard normal samples by the Box-Muller transform of two counter-based streams.

    :math:`z = \sqrt{-2 \log u_1}\, \cos(2 \pi u_2)` (Box & Muller 1958), with
    :math:`u_1, u_2` from :func:`uniform` under keys folded from ``key``. Position-keyed like
    every jdrop draw.

    Examples:
      >>> import jax
      >>> z = normal(jax.random.key(0), (100_000,))
      >>> round(float(z.mean()), 1), round(float(z.std()), 1)
      (0.0, 1.0)
    """
    key = as_key(key)
    u1 = uniform(jax.random.fold_in(key, 1), shape)
    u2 = uniform(jax.random.fold_in(key, 2), shape)
    radius = jnp.sqrt(np.float32(-2.0) * jnp.log(u1))
    return (radius * jnp.cos(np.float32(2 * np.pi) * u2)).astype(dtype)


def _shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        if any(isinstance(d, bool | np.bool_) for d in shape):
            raise TypeError
        out = tuple(operator.index(d) for d in shape)  # 2.5 is refused, not truncated
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got shape={shape!r}") from None
    if any(d < 0 for d in out):
        raise ValueError(f"shape must have non-negative sizes, got shape={shape!r}")
    return out


def drop_threshold(rate) -> tuple[jax.Array, jax.Array]:
    """The uint32 threshold ``floor(fl32(rate) * 2**32)`` and a flag ``rate < 1``.

    An element is dropped when its bits are below the threshold (or the flag is false).
    Float32 arithmetic in both the concrete (numpy) and traced (XLA) branches, so a
    Python-float rate and a traced rate give identical masks.
    """
    if concrete_rate(rate) is not None:
        scaled = np.float32(rate) * np.float32(_TWO_32)
        threshold = np.uint32(min(scaled, _LARGEST_F32_BELOW_2_32))
        return threshold, np.bool_(float(rate) < 1.0)
    rate32 = jax.lax.stop_gradient(jnp.asarray(rate)).astype(jnp.float32)
    scaled = jnp.clip(rate32 * np.float32(_TWO_32), np.float32(0), _LARGEST_F32_BELOW_2_32)
    return scaled.astype(jnp.uint32), rate32 < np.float32(1)


class MaskPlan(NamedTuple):
    """Everything a counter-based mask is drawn from (a pytree of small arrays).

    Attributes:
      words: the two uint32 key words (:func:`jdrop._keys.key_words`).
      threshold: uint32 ``floor(fl32(rate) * 2**32)``: bits below it drop the element.
      live: ``rate < 1`` (``False`` drops everything).
    """

    words: jax.Array
    threshold: jax.Array
    live: jax.Array


def mask_plan(key, rate) -> MaskPlan:
    """The :class:`MaskPlan` of ``key`` and ``rate``: the one place it is derived."""
    threshold, live = drop_threshold(rate)
    return MaskPlan(key_words(key), threshold, live)


def keep_from_plan(plan: MaskPlan, shape: tuple[int, ...], block=None) -> jax.Array:
    """The keep-mask of ``shape`` drawn from ``plan`` (``True`` where kept)."""
    return (_bits_from_words(plan.words, shape, block) >= plan.threshold) & plan.live


def compute_dtype(dtype) -> jnp.dtype:
    """float32 for half precisions (scale once, round once), the dtype itself otherwise."""
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype.itemsize < 4 else dtype


def keep_scale(rate, dtype) -> jax.Array:
    """``1 / (1 - rate)`` in float32 arithmetic, 0 where ``rate == 1`` (never ``inf``)."""
    if concrete_rate(rate) is not None:
        keep = np.float32(1) - np.float32(rate)
        return np.asarray(np.float32(1) / keep if keep > 0 else np.float32(0), dtype)
    keep = np.float32(1) - jax.lax.stop_gradient(jnp.asarray(rate)).astype(jnp.float32)
    safe = jnp.where(keep > 0, keep, np.float32(1))
    return jnp.where(keep > 0, np.float32(1) / safe, np.float32(0)).astype(dtype)


def mask_shape(shape: Sequence[int], broadcast_dims: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with size 1 on the ``broadcast_dims`` (axes sharing one mask value)."""
    return tuple(1 if axis in broadcast_dims else size for axis, size in enumerate(shape))


def maskless_output(key, x: jax.Array, rate_value: float | None, *, deterministic: bool,
                    function: str) -> jax.Array | None:
    """The output when no random mask is needed, else ``None``: the ops' shared guard.

    Deterministic (inference) returns ``x``; training without a key raises the
    ``ValueError`` of :func:`jdrop._validation.require_key`; a concrete ``rate == 0``
    returns ``x`` and ``rate == 1`` zeros (never NaN), drawing no random bits.

    Args:
      key: the op's key (``None`` allowed when deterministic).
      x: the op's checked input.
      rate_value: the concrete rate (:func:`jdrop._validation.concrete_rate`), or ``None``
        when traced.
      deterministic: inference mode.
      function: the op's name, for the error message.

    Returns:
      ``x``, zeros like ``x``, or ``None`` when the op must draw a mask.
    """
    if deterministic:
        return x
    require_key(key, deterministic, function)
    if rate_value == 0.0:
        return x
    if rate_value == 1.0:
        return jnp.zeros_like(x)
    return None


def keep_mask(key, shape: Sequence[int], rate, *, impl: str = "counter", global_shape=None,
              start=None) -> jax.Array:
    r"""Boolean mask, ``True`` where an element is kept: :math:`P(\mathrm{keep}) = 1 - p`.

    The one Bernoulli generator behind every jdrop variant (:math:`p` = ``rate``). With
    ``impl="counter"`` (default) an element is kept when its :func:`random_bits` reach the
    threshold:

    .. math::

       \mathrm{keep}_i = \left[\mathrm{bits}(i) \ge \lfloor \mathrm{fl}_{32}(p)\, 2^{32}
       \rfloor\right],

    and every element is dropped at :math:`p = 1`; the realised drop probability is within
    :math:`2^{-24} p + 2^{-32}` of :math:`p`
    (:math:`\mathrm{fl}_{32}`: rounding to float32, so concrete and traced rates give the
    same bits); position-keyed and sharding-invariant. With ``impl="jax"``:
    ``jax.random.bernoulli(key, 1 - rate)``.

    Args:
      key: a typed key (``jax.random.key``) or a legacy ``uint32[2]`` key.
      shape: shape of the mask.
      rate: drop probability in ``[0, 1]``; a Python float or a traced scalar.
      impl: ``"counter"`` or ``"jax"``.
      global_shape, start: draw the block ``shape`` at ``start`` of the ``global_shape``
        mask (``impl="counter"`` only): inside ``jax.shard_map`` pass
        :func:`shard_block`'s result to get the unsharded array's exact mask.

    Returns:
      A ``bool`` array of ``shape``.

    Raises:
      ValueError: for a concrete ``rate`` outside ``[0, 1]`` or NaN, an unknown ``impl``,
        or a block (``global_shape``, ``start``) that does not lie inside ``global_shape``.

    Examples:
      >>> import jax
      >>> mask = keep_mask(jax.random.key(0), (1000, 1000), 0.25)
      >>> round(float(mask.mean()), 3)
      0.75
    """
    shape = _shape(shape)
    rate_value = concrete_rate(rate)
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got impl={impl!r}")
    block = _block(shape, global_shape, start)
    if block is not None and impl != "counter":
        raise ValueError(f"global_shape/start need impl='counter', got impl={impl!r}")
    if rate_value == 0.0:
        return jnp.ones(shape, bool)
    if rate_value == 1.0:
        return jnp.zeros(shape, bool)
    if impl == "jax":
        keep_prob = 1 - jax.lax.stop_gradient(jnp.asarray(rate, jnp.float32))
        return jax.random.bernoulli(as_key(key), keep_prob, shape)
    return keep_from_plan(mask_plan(key, rate), shape, block)
