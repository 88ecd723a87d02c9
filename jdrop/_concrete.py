"""Concrete dropout: a drop probability learned by gradient descent.

The Bernoulli drop indicator is replaced by its Concrete (relaxed Bernoulli) relaxation

    z = sigmoid((log p - log(1 - p) + log u - log(1 - u)) / t),   u ~ U(0, 1),
    y = x * (1 - z) / (1 - p),

which is differentiable in ``p`` (temperature ``t = 0.1`` in the paper). The objective adds

    R(p, W) = weight_regularizer * ||W||**2 / (1 - p)
              + dropout_regularizer * K * (p log p + (1 - p) log(1 - p)),

for the layer's weights ``W`` that follow the dropout and its input dimension ``K``
(the KL term of the variational objective; Gal et al. use ``weight_regularizer = l**2 / N``
and ``dropout_regularizer = 2 / (tau * N)`` for ``N`` training points).

References:
  Gal, Hron, Kendall. "Concrete Dropout". NeurIPS 2017.
  Maddison, Mnih, Teh. "The Concrete Distribution". ICLR 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from jdrop._masks import compute_dtype, uniform
from jdrop._validation import (
    check_float_array,
    check_int,
    check_number,
    concrete_rate,
    poison_invalid_rate,
    require_key,
)

__all__ = ["concrete_dropout", "concrete_dropout_regularizer"]


def concrete_dropout(
    key,
    x,
    rate,
    *,
    temperature: float = 0.1,
    deterministic: bool = False,
    eps: float = 1e-7,
) -> jax.Array:
    r"""Relaxed-Bernoulli dropout, differentiable with respect to ``rate``.

    The Bernoulli drop indicator is replaced by its Concrete relaxation (Maddison et al.
    2017) at temperature :math:`t`, with :math:`p` = ``rate``:

    .. math::

       z = \sigma\!\left(\frac{\log p - \log(1 - p) + \log u - \log(1 - u)}{t}\right),
       \quad u \sim \mathcal{U}(0, 1), \qquad y = \frac{x \odot (1 - z)}{1 - p},

    with :math:`\sigma` the logistic sigmoid; as :math:`t \to 0`, :math:`z` becomes a
    :math:`\mathrm{Bernoulli}(p)` drop indicator and :math:`y` inverted dropout. Add
    :func:`concrete_dropout_regularizer` to the loss to learn :math:`p`.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: floating-point array.
      rate: the drop probability ``p`` in ``[0, 1)``, typically ``sigmoid(logit)`` of a
        learned parameter; gradients flow into it.
      temperature: the Concrete temperature ``t`` (> 0); smaller is closer to Bernoulli.
      deterministic: return ``x`` (the inverted scaling makes this the mean prediction).
      eps: clamp inside the logarithms.

    Returns:
      An array like ``x``.

    Raises:
      ValueError: concrete ``rate`` outside ``[0, 1)``, ``temperature <= 0``, missing key.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> loss = lambda p: concrete_dropout(jax.random.key(0), jnp.ones(8), p).sum()
      >>> bool(jnp.isfinite(jax.grad(loss)(jnp.float32(0.3))))
      True

    References:
      Gal, Hron, Kendall. "Concrete Dropout". NeurIPS 2017.
    """
    x = check_float_array(x)
    concrete_rate(rate, allow_one=False)
    check_number(temperature, "temperature", positive=True, allow_traced=True)
    if deterministic:
        return x
    require_key(key, deterministic, "concrete_dropout")
    dtype = compute_dtype(x.dtype)
    p = jnp.asarray(rate).astype(dtype)
    u = uniform(key, x.shape, dtype)
    e = np.asarray(eps, dtype)
    logit = jnp.log(p + e) - jnp.log(1 - p + e) + jnp.log(u + e) - jnp.log(1 - u + e)
    drop = jax.nn.sigmoid(logit / jnp.asarray(temperature).astype(dtype))
    y = (x.astype(dtype) * (1 - drop) / (1 - p)).astype(x.dtype)
    return poison_invalid_rate(y, rate, allow_one=False)


def concrete_dropout_regularizer(
    rate,
    weights,
    *,
    input_dim: int,
    weight_regularizer: float,
    dropout_regularizer: float,
) -> jax.Array:
    r"""The Concrete-dropout penalty :math:`R(p, W)` (add it to the loss).

    .. math::

       R(p, W) = \lambda_W \frac{\lVert W \rVert_2^2}{1 - p}
       + \lambda_p K \left(p \log p + (1 - p) \log(1 - p)\right)

    for the weights :math:`W` of the layer fed by the dropout, :math:`K` = ``input_dim``,
    :math:`\lambda_W` = ``weight_regularizer`` and :math:`\lambda_p` = ``dropout_regularizer``
    (the KL term of the variational objective; Gal et al. use :math:`\lambda_W = l^2 / N`
    and :math:`\lambda_p = 2 / (\tau N)` for :math:`N` training points, prior length-scale
    :math:`l` and model precision :math:`\tau`). The second term is :math:`-K` times the
    entropy of :math:`\mathrm{Bernoulli}(p)`: minimising it pushes :math:`p` towards 0.5.

    Args:
      rate: the drop probability ``p`` (traced; gradients flow into it).
      weights: the weights of the layer fed by the dropout (an array or a pytree).
      input_dim: ``K``, the number of features dropped (the layer's input dimension).
      weight_regularizer: :math:`\lambda_W`, :math:`l^2 / N` in the paper.
      dropout_regularizer: :math:`\lambda_p`, :math:`2 / (\tau N)` in the paper.

    Returns:
      A float32 scalar. At ``rate == 0`` the entropy term is its limit 0
      (``0 * log 0 = 0``), so the value is finite; a traced rate that is NaN or outside
      ``[0, 1)`` gives NaN.

    Raises:
      ValueError: a concrete ``rate`` outside ``[0, 1)``, or a ``rate`` that is not a
        scalar (it would broadcast against the penalty); ``input_dim < 1``; negative
        regularisers.
      TypeError: bool ``rate``; non-integer ``input_dim``.

    Examples:
      >>> import jax.numpy as jnp
      >>> r = concrete_dropout_regularizer(0.5, jnp.ones((2, 2)), input_dim=2,
      ...                                  weight_regularizer=1.0, dropout_regularizer=1.0)
      >>> round(float(r), 4)  # 4 / 0.5 + 2 * (2 * 0.5 * log 0.5)
      6.6137
    """
    concrete_rate(rate, allow_one=False)
    if jnp.ndim(rate) != 0:
        raise ValueError(f"rate must be a scalar, got rate.shape={jnp.shape(rate)}")
    check_int(input_dim, "input_dim", 1)
    check_number(weight_regularizer, "weight_regularizer", minimum=0)
    check_number(dropout_regularizer, "dropout_regularizer", minimum=0)
    p = jnp.asarray(rate, jnp.float32)
    squares = sum(
        jnp.sum(jnp.square(w.astype(jnp.float32))) for w in jax.tree_util.tree_leaves(weights)
    )
    weight_term = np.float32(weight_regularizer) * squares / (1 - p)
    entropy = xlogy(p, p) + (1 - p) * jnp.log1p(-p)
    penalty = weight_term + np.float32(dropout_regularizer * input_dim) * entropy
    return poison_invalid_rate(penalty, rate, allow_one=False)
