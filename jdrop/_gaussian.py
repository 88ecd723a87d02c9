"""Gaussian (multiplicative-noise) dropout.

    y = x * e,   e ~ N(1, sigma**2),   sigma**2 = rate / (1 - rate),

the Gaussian with the same mean and variance as inverted Bernoulli dropout's
``m / (1 - rate)``; identity at test time.

References:
  Srivastava et al. "Dropout: A Simple Way to Prevent Neural Networks from Overfitting".
  JMLR 2014, section 10. Wang & Manning. "Fast dropout training". ICML 2013.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._masks import compute_dtype, maskless_output, normal
from jdrop._validation import check_float_array, concrete_rate, poison_invalid_rate

__all__ = ["gaussian_dropout"]


def gaussian_dropout(key, x, rate, *, deterministic: bool = False) -> jax.Array:
    r"""Multiplies ``x`` by :math:`\mathcal{N}(1, \sigma^2)` noise, :math:`\sigma^2 = p / (1 - p)`.

    .. math::

       y = x \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}\!\left(1, \frac{p}{1 - p}\right)
       \text{ elementwise},

    with :math:`p` = ``rate``: the Gaussian with the mean and variance of inverted Bernoulli
    dropout's multiplier :math:`m / (1 - p)`, so :math:`\mathbb{E}[y] = x` and
    :math:`\mathrm{Var}[y] = x^2 p / (1 - p)` as for :func:`jdrop.dropout`. Identity at test
    time.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: floating-point array.
      rate: the Bernoulli drop probability being matched, in ``[0, 1)`` (``rate == 1``
        would need infinite variance). A traced rate that is NaN or outside ``[0, 1)``
        gives NaN everywhere (see :func:`jdrop.checked`).
      deterministic: return ``x`` unchanged.

    Returns:
      An array like ``x``.

    Raises:
      ValueError: concrete ``rate`` outside ``[0, 1)`` or NaN; missing key.
      TypeError: integer ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = gaussian_dropout(jax.random.key(0), jnp.ones(100_000), 0.5)
      >>> round(float(y.mean()), 1), round(float(y.var()), 1)
      (1.0, 1.0)

    References:
      Srivastava et al. JMLR 2014, section 10.
    """
    x = check_float_array(x)
    rate_value = concrete_rate(rate, allow_one=False)
    out = maskless_output(key, x, rate_value, deterministic=deterministic,
                          function="gaussian_dropout")
    if out is not None:
        return out
    dtype = compute_dtype(x.dtype)
    rate = jax.lax.stop_gradient(jnp.asarray(rate)).astype(dtype)
    sigma = jnp.sqrt(rate / (1 - rate))
    noise = np.asarray(1, dtype) + sigma * normal(key, x.shape, dtype)
    y = (x.astype(dtype) * noise).astype(x.dtype)
    return poison_invalid_rate(y, rate, allow_one=False)
