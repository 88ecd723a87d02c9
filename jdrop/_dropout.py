"""Standard (Bernoulli) dropout and the variants that only change which axes share a mask.

Inverted dropout (Srivastava et al. 2014, the form every framework uses): while training

    y = m * x / (1 - rate),   m ~ Bernoulli(1 - rate) elementwise,

and ``y = x`` at test time, so ``E[y] = x`` and ``Var[y] = x**2 * rate / (1 - rate)``.
The paper's original formulation (``inverted=False``) trains with ``y = m * x`` and applies
the weight-scaling rule at test, ``y = (1 - rate) * x``: the same expected output.

Every function here selects instead of multiplying by the mask (``where(m, x * s, 0)``),
so an ``inf`` or ``NaN`` in a dropped position never leaks and ``rate == 1`` gives zeros with
zero (finite) gradients.

References:
  Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov. "Dropout: A Simple Way to
  Prevent Neural Networks from Overfitting". JMLR 2014.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._masks import (
    MaskPlan,
    compute_dtype,
    keep_from_plan,
    keep_mask,
    keep_scale,
    mask_plan,
    mask_shape,
    maskless_output,
)
from jdrop._validation import (
    check_float_array,
    concrete_rate,
    normalize_axes,
    normalize_axis,
    poison_invalid_rate,
)

__all__ = [
    "apply_mask",
    "drop_path",
    "dropconnect",
    "dropout",
    "spatial_axes",
    "spatial_dropout",
    "weight_scale",
]


def _scale(x: jax.Array, factor) -> jax.Array:
    """``x * factor`` computed in at least float32 and cast back to ``x.dtype``."""
    dtype = compute_dtype(x.dtype)
    return (x.astype(dtype) * factor).astype(x.dtype)


def weight_scale(x: jax.Array, rate) -> jax.Array:
    r"""The weight-scaling rule at test time: :math:`y = (1 - p)\, x` (Srivastava et al. 2014).

    ``rate`` is :math:`p`: a network trained without inverted scaling (``inverted=False``)
    multiplies each unit's output by its keep probability at test time.

    A traced ``rate`` that is NaN or outside ``[0, 1]`` gives NaN everywhere (see
    :func:`jdrop.checked` to raise instead); an integer ``x`` raises ``TypeError``.
    """
    x = check_float_array(x)
    if concrete_rate(rate) is not None:
        keep = np.asarray(np.float32(1) - np.float32(rate), compute_dtype(x.dtype))
    else:
        keep = 1 - jax.lax.stop_gradient(jnp.asarray(rate)).astype(compute_dtype(x.dtype))
    return poison_invalid_rate(_scale(x, keep), rate)


def apply_mask(x, keep, rate, *, inverted: bool = True) -> jax.Array:
    r"""Applies a keep-mask: :math:`y = m \odot x / (1 - p)`, or :math:`m \odot x` if not inverted.

    :math:`m` = ``keep``, :math:`p` = ``rate``; dropped positions are selected away
    (``where(keep, ..., 0)``), so an ``inf`` or ``NaN`` there never leaks.

    The one place where masks meet data; use it with :func:`jdrop.keep_mask` to reuse a mask
    across time steps (variational RNN dropout).

    Args:
      x: floating-point array.
      keep: boolean array broadcastable to ``x.shape``.
      rate: the drop probability the mask was drawn with (sets the scale).
      inverted: scale kept values by :math:`1 / (1 - p)` (default) or leave them as they are.

    Returns:
      An array with the shape and dtype of ``x``.

    Examples:
      >>> import jax.numpy as jnp
      >>> apply_mask(jnp.array([1.0, jnp.inf]), jnp.array([True, False]), 0.5)
      Array([2., 0.], dtype=float32)
    """
    x = check_float_array(x)
    keep = jnp.asarray(keep)
    if keep.dtype != jnp.bool_:
        raise TypeError(f"keep must be a boolean mask, got keep.dtype={keep.dtype}")
    try:
        shape = jnp.broadcast_shapes(keep.shape, x.shape)
    except ValueError:
        shape = None
    if shape != x.shape:
        raise ValueError(
            f"keep must be broadcastable to x.shape={x.shape}, got keep.shape={keep.shape}"
        )
    kept = _scale(x, keep_scale(rate, compute_dtype(x.dtype))) if inverted else x
    return poison_invalid_rate(jnp.where(keep, kept, jnp.zeros((), x.dtype)), rate)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _regenerating_dropout(shape, plan: MaskPlan, scale, x):
    """Inverted dropout whose VJP recomputes the mask from ``plan`` (nothing stored)."""
    return jnp.where(keep_from_plan(plan, shape), _scale(x, scale), jnp.zeros((), x.dtype))


def _regenerating_fwd(shape, plan, scale, x):
    return _regenerating_dropout(shape, plan, scale, x), (plan, scale)


def _regenerating_bwd(shape, residuals, g):
    plan, scale = residuals
    grad = jnp.where(keep_from_plan(plan, shape), _scale(g, scale), jnp.zeros((), g.dtype))
    return None, None, grad


_regenerating_dropout.defvjp(_regenerating_fwd, _regenerating_bwd)


def dropout(
    key,
    x,
    rate,
    *,
    broadcast_dims: Sequence[int] = (),
    deterministic: bool = False,
    inverted: bool = True,
    impl: str = "counter",
    regenerate_mask: bool = False,
    block=None,
) -> jax.Array:
    r"""Dropout: :math:`y = m \odot x / (1 - p)` while training, :math:`y = x` at test.

    With :math:`p` = ``rate`` and the keep mask :math:`m \sim \mathrm{Bernoulli}(1 - p)`
    from :func:`jdrop.keep_mask` (shared along ``broadcast_dims``):

    .. math::

       \mathbb{E}[y] = x, \qquad \mathrm{Var}[y] = x^2 \, \frac{p}{1 - p}, \qquad
       \frac{\partial y}{\partial x} = \frac{m}{1 - p}.

    With ``inverted=False`` the paper's original formulation: :math:`y = m \odot x` while
    training and :math:`y = (1 - p)\, x` at test (weight scaling, :func:`weight_scale`).

    Args:
      key: typed key (``jax.random.key``) or legacy ``uint32[2]`` key; may be ``None``
        when ``deterministic``.
      x: floating-point array (float32, bfloat16, float16, ...); the output has its dtype.
      rate: drop probability (not the keep probability!) in ``[0, 1]``, a Python float or a
        traced scalar. No gradient flows into it. A traced rate that is NaN or outside
        ``[0, 1]`` makes the whole output NaN (wrap with :func:`jdrop.checked` to raise).
      broadcast_dims: axes along which one mask value is shared (e.g. the time axis).
      deterministic: inference mode: return ``x`` (or :math:`(1 - p)\, x` if not inverted).
      inverted: scale while training (default) rather than at test.
      impl: ``"counter"`` (fast, sharding-invariant) or ``"jax"`` (``jax.random``-exact).
      regenerate_mask: with ``impl="counter"``, a custom VJP recomputes the mask from the
        key in the backward pass instead of storing it (reverse-mode only).
      block: inside ``jax.shard_map``, ``(global_shape, start)`` of the local ``x`` from
        :func:`jdrop.shard_block`: the local block of the unsharded array's exact mask
        (by default every shard would draw the same mask from one key).

    Returns:
      An array with the shape, dtype and sharding of ``x``.

    Raises:
      ValueError: concrete ``rate`` outside ``[0, 1]`` or NaN; ``broadcast_dims`` out of
        range; missing ``key`` while not deterministic.
      TypeError: integer or bool ``x``; bool ``rate``; malformed ``key``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = dropout(jax.random.key(0), jnp.ones((2, 4)), 0.5)
      >>> sorted(set(y.ravel().tolist()))
      [0.0, 2.0]
      >>> dropout(None, jnp.ones(3), 0.5, deterministic=True)
      Array([1., 1., 1.], dtype=float32)
      >>> dropout(None, jnp.ones(3), 0.5, deterministic=True, inverted=False)
      Array([0.5, 0.5, 0.5], dtype=float32)

    References:
      Srivastava et al. "Dropout: A Simple Way to Prevent Neural Networks from
      Overfitting". JMLR 2014. Hinton et al. "Improving neural networks by preventing
      co-adaptation of feature detectors". arXiv:1207.0580, 2012.
    """
    x = check_float_array(x)
    rate_value = concrete_rate(rate)
    dims = normalize_axes(broadcast_dims, x.ndim, "broadcast_dims")
    out = maskless_output(key, x, rate_value, deterministic=deterministic, function="dropout")
    if out is not None:
        return weight_scale(x, rate) if deterministic and not inverted else out
    shape = mask_shape(x.shape, dims)
    if block is not None:
        global_shape, start = block
        global_shape = mask_shape(global_shape, dims)
        start = tuple(0 if axis in dims else s for axis, s in enumerate(start))
        keep = keep_mask(key, shape, rate, impl=impl, global_shape=global_shape, start=start)
        return apply_mask(x, keep, rate, inverted=inverted)
    if regenerate_mask and impl == "counter" and inverted:
        plan = jax.tree.map(jnp.asarray, mask_plan(key, rate))
        y = _regenerating_dropout(shape, plan, keep_scale(rate, compute_dtype(x.dtype)), x)
        return poison_invalid_rate(y, rate)
    keep = keep_mask(key, shape, rate, impl=impl)
    return apply_mask(x, keep, rate, inverted=inverted)


def spatial_axes(ndim: int, channel_axis: int = -1, batch_axis: int | None = 0) -> tuple[int, ...]:
    """The axes that are neither the batch nor the channel axis."""
    channel = normalize_axis(channel_axis, ndim, "channel_axis")
    reserved = {channel}
    if batch_axis is not None:
        batch = normalize_axis(batch_axis, ndim, "batch_axis")
        if batch == channel:
            raise ValueError(
                f"batch_axis={batch_axis} and channel_axis={channel_axis} name the same axis"
            )
        reserved.add(batch)
    return tuple(axis for axis in range(ndim) if axis not in reserved)


def _require_spatial(x: jax.Array, batch_axis: int | None, function: str):
    minimum = 3 if batch_axis is not None else 2
    if x.ndim < minimum:
        raise ValueError(
            f"{function} expects (batch, *spatial, channels) with 1 to 3 spatial axes, got "
            f"x.ndim={x.ndim} (shape {x.shape})"
        )


def spatial_dropout(
    key,
    x,
    rate,
    *,
    channel_axis: int = -1,
    batch_axis: int | None = 0,
    deterministic: bool = False,
    inverted: bool = True,
    impl: str = "counter",
) -> jax.Array:
    r"""Spatial dropout: drops whole feature maps (one mask value per example and channel).

    :math:`y_{n, \dots, c} = m_{n c}\, x_{n, \dots, c} / (1 - p)` with one
    :math:`m_{n c} \sim \mathrm{Bernoulli}(1 - p)` per example :math:`n` and channel :math:`c`
    (:math:`p` = ``rate``), for 1-D ``(N, L, C)``, 2-D
    ``(N, H, W, C)`` and 3-D ``(N, D, H, W, C)`` inputs (channels-last by default; pass
    ``channel_axis=1`` for PyTorch's ``NCHW``). Same semantics as PyTorch's
    ``Dropout1d/2d/3d`` and Keras' ``SpatialDropout``: neighbouring activations of a
    convolution are strongly correlated, so dropping single elements barely regularises.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: floating-point array with a batch axis, 1-3 spatial axes and a channel axis.
      rate: drop probability in ``[0, 1]``.
      channel_axis: the channel axis (default last).
      batch_axis: the batch axis, or ``None`` for an unbatched input.
      deterministic, inverted, impl: as in :func:`jdrop.dropout`.

    Returns:
      An array like ``x``.

    Raises:
      ValueError: as :func:`jdrop.dropout`, and for an input with no spatial axis.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = spatial_dropout(jax.random.key(1), jnp.ones((2, 5, 5, 8)), 0.5)
      >>> bool(((y == 0).all(axis=(1, 2)) | (y != 0).all(axis=(1, 2))).all())
      True

    References:
      Tompson, Goroshin, Jain, LeCun, Bregler. "Efficient Object Localization Using
      Convolutional Networks". CVPR 2015.
    """
    x = check_float_array(x)
    _require_spatial(x, batch_axis, "spatial_dropout")
    dims = spatial_axes(x.ndim, channel_axis, batch_axis)
    return dropout(
        key, x, rate, broadcast_dims=dims, deterministic=deterministic, inverted=inverted,
        impl=impl,
    )


def drop_path(
    key,
    x,
    rate,
    *,
    batch_axis: int = 0,
    deterministic: bool = False,
    inverted: bool = True,
    impl: str = "counter",
) -> jax.Array:
    r"""Stochastic depth: drops a residual branch for whole examples.

    :math:`y_n = b_n x_n / (1 - p)` with one :math:`b_n \sim \mathrm{Bernoulli}(1 - p)` per
    example :math:`n` (:math:`p` = ``rate``); use as ``h + drop_path(key, branch(h), rate)``.
    With ``inverted=False`` the paper's form: unscaled while training, :math:`(1 - p)\, x`
    at test.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: the residual branch's output, floating point.
      rate: probability of dropping the branch for an example.
      batch_axis: the example axis.
      deterministic, inverted, impl: as in :func:`jdrop.dropout`.

    Returns:
      An array like ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = drop_path(jax.random.key(0), jnp.ones((6, 3)), 0.5)
      >>> bool(((y == 0).all(axis=1) | (y == 2).all(axis=1)).all())
      True

    References:
      Huang, Sun, Liu, Sedra, Weinberger. "Deep Networks with Stochastic Depth". ECCV 2016.
    """
    x = check_float_array(x)
    batch = normalize_axis(batch_axis, x.ndim, "batch_axis")
    dims = tuple(axis for axis in range(x.ndim) if axis != batch)
    return dropout(
        key, x, rate, broadcast_dims=dims, deterministic=deterministic, inverted=inverted,
        impl=impl,
    )


def dropconnect(
    key,
    weights,
    rate,
    *,
    deterministic: bool = False,
    inverted: bool = True,
    impl: str = "counter",
) -> jax.Array:
    r"""DropConnect: drops individual weights instead of activations.

    :math:`W' = M \odot W / (1 - p)` with :math:`M \sim \mathrm{Bernoulli}(1 - p)` per
    weight (:math:`p` = ``rate``), then use ``x @ W'``. One mask per call: draw a mask per
    example with ``jax.vmap`` over keys. At test time :math:`W` itself (the mean of
    :math:`W'`); Wan et al. use a moment-matched Gaussian at inference, which matches the
    same mean.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      weights: floating-point weight array (any shape, typically ``(in, out)``).
      rate: drop probability per weight.
      deterministic, inverted, impl: as in :func:`jdrop.dropout`.

    Returns:
      The masked weights, shaped and typed like ``weights``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> w = dropconnect(jax.random.key(0), jnp.ones((4, 3)), 0.5)
      >>> w.shape, sorted(set(w.ravel().tolist()))
      ((4, 3), [0.0, 2.0])

    References:
      Wan, Zeiler, Zhang, LeCun, Fergus. "Regularization of Neural Networks using
      DropConnect". ICML 2013.
    """
    return dropout(key, weights, rate, deterministic=deterministic, inverted=inverted, impl=impl)
