"""Alpha dropout for self-normalising (SELU) networks.

Dropped units are set to SELU's negative saturation ``alpha' = -lambda * alpha`` instead of
0, then an affine map restores zero mean and unit variance:

    y = a * (m * x + (1 - m) * alpha') + b,   m ~ Bernoulli(q),  q = 1 - rate,
    a = (q + alpha'**2 * q * (1 - q)) ** -1/2,   b = -a * alpha' * (1 - q).

For inputs with mean 0 and variance 1, ``E[y] = 0`` and ``Var[y] = 1``.

References:
  Klambauer, Unterthiner, Mayr, Hochreiter. "Self-Normalizing Neural Networks".
  NeurIPS 2017.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._dropout import spatial_axes
from jdrop._masks import compute_dtype, keep_mask, mask_shape, maskless_output
from jdrop._validation import (
    check_float_array,
    concrete_rate,
    normalize_axes,
    poison_invalid_rate,
)

__all__ = ["SELU_ALPHA", "SELU_SCALE", "alpha_dropout", "feature_alpha_dropout"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_ALPHA_PRIME = -SELU_SCALE * SELU_ALPHA


def _affine(rate, dtype):
    """``(a, b)`` of the module docstring, in ``dtype`` (zeros when ``rate == 1``)."""
    if concrete_rate(rate) is not None:
        q = 1.0 - float(rate)
        a = (q + _ALPHA_PRIME**2 * q * (1 - q)) ** -0.5 if q > 0 else 0.0
        return np.asarray(a, dtype), np.asarray(-a * _ALPHA_PRIME * (1 - q), dtype)
    q = 1 - jax.lax.stop_gradient(jnp.asarray(rate)).astype(dtype)
    var = q + np.asarray(_ALPHA_PRIME**2, dtype) * q * (1 - q)
    a = jnp.where(q > 0, jax.lax.rsqrt(jnp.where(q > 0, var, 1)), 0)
    return a, -a * np.asarray(_ALPHA_PRIME, dtype) * (1 - q)


def alpha_dropout(
    key,
    x,
    rate,
    *,
    broadcast_dims: Sequence[int] = (),
    deterministic: bool = False,
    impl: str = "counter",
) -> jax.Array:
    r"""Alpha dropout: keeps SELU activations at zero mean and unit variance.

    Dropped units are set to SELU's negative saturation :math:`\alpha' = -\lambda \alpha`
    (``-SELU_SCALE * SELU_ALPHA``) instead of 0, then an affine map restores the moments.
    With keep probability :math:`q = 1 - p` (:math:`p` = ``rate``) and
    :math:`m \sim \mathrm{Bernoulli}(q)`:

    .. math::

       y = a \left(m\, x + (1 - m)\, \alpha'\right) + b, \qquad
       a = \left(q + \alpha'^2 q (1 - q)\right)^{-1/2}, \qquad
       b = -a\, \alpha' (1 - q),

    so that inputs with mean 0 and variance 1 give :math:`\mathbb{E}[y] = 0` and
    :math:`\mathrm{Var}[y] = 1`. Identity at test time; ``rate == 1`` gives zeros (the limit
    :math:`a \to 0`, :math:`b \to 0`).

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: floating-point array.
      rate: drop probability in ``[0, 1]`` (a traced rate that is NaN or outside it gives
        NaN everywhere; see :func:`jdrop.checked`).
      broadcast_dims: axes sharing one mask value.
      deterministic: return ``x`` unchanged.
      impl: ``"counter"`` or ``"jax"`` (see :func:`jdrop.keep_mask`).

    Returns:
      An array like ``x``.

    Raises:
      ValueError, TypeError: as :func:`jdrop.dropout`.

    Examples:
      >>> import jax
      >>> x = jax.random.normal(jax.random.key(0), (200_000,))
      >>> y = alpha_dropout(jax.random.key(1), x, 0.2)
      >>> round(float(y.mean()), 1), round(float(y.std()), 1)
      (0.0, 1.0)

    References:
      Klambauer et al. "Self-Normalizing Neural Networks". NeurIPS 2017.
    """
    x = check_float_array(x)
    rate_value = concrete_rate(rate)
    dims = normalize_axes(broadcast_dims, x.ndim, "broadcast_dims")
    out = maskless_output(key, x, rate_value, deterministic=deterministic,
                          function="alpha_dropout")
    if out is not None:
        return out
    dtype = compute_dtype(x.dtype)
    keep = keep_mask(key, mask_shape(x.shape, dims), rate, impl=impl)
    a, b = _affine(rate, dtype)
    dropped = jnp.where(keep, x.astype(dtype), np.asarray(_ALPHA_PRIME, dtype))
    return poison_invalid_rate((a * dropped + b).astype(x.dtype), rate)


def feature_alpha_dropout(
    key,
    x,
    rate,
    *,
    channel_axis: int = -1,
    batch_axis: int | None = 0,
    deterministic: bool = False,
    impl: str = "counter",
) -> jax.Array:
    """Alpha dropout of whole feature maps (PyTorch's ``FeatureAlphaDropout``).

    One mask value per example and channel, shared over the spatial axes, with the affine
    correction of :func:`alpha_dropout`.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: ``(batch, *spatial, channels)`` floating-point array (channels-last by default).
      rate: drop probability in ``[0, 1]``.
      channel_axis: the channel axis.
      batch_axis: the batch axis, or ``None`` for an unbatched input.
      deterministic, impl: as in :func:`alpha_dropout`.

    Returns:
      An array like ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = feature_alpha_dropout(jax.random.key(0), jnp.zeros((2, 4, 4, 3)), 0.5)
      >>> bool((y == y[:, :1, :1, :]).all())
      True

    References:
      Klambauer et al. "Self-Normalizing Neural Networks". NeurIPS 2017.
    """
    x = check_float_array(x)
    dims = spatial_axes(x.ndim, channel_axis, batch_axis)
    return alpha_dropout(
        key, x, rate, broadcast_dims=dims, deterministic=deterministic, impl=impl
    )
