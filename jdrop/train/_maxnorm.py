"""The max-norm constraint of Srivastava et al. (2014), as a projection and an optax transform.

Each unit's incoming weight vector ``w_j`` (column ``j`` of an ``(in, out)`` kernel) is
projected back onto the ball of radius ``c`` after every update:

    w_j <- w_j * min(1, c / ||w_j||_2).

Units already inside the ball are left exactly as they are. Dropout with max-norm lets a
network train with large learning rates without its weights blowing up (section 5.1 of the
paper uses ``c`` between 3 and 4).

References:
  Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov. "Dropout: A Simple Way to
  Prevent Neural Networks from Overfitting". JMLR 2014.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["max_norm", "project_max_norm"]


def _check(max_value, ndims) -> tuple[float, tuple[int, ...]]:
    value = float(max_value)
    if not value > 0:
        raise ValueError(f"max_value must be > 0, got max_value={max_value!r}")
    ndims = tuple(int(n) for n in ndims)
    if any(n < 2 for n in ndims):
        raise ValueError(f"ndims must name kernel ranks >= 2, got ndims={ndims!r}")
    return value, ndims


def _outside(w: jax.Array, max_value: float) -> tuple[jax.Array, jax.Array]:
    """Per-unit norms over every axis but the last, and whether each unit is outside the ball."""
    axes = tuple(range(w.ndim - 1))
    norms = jnp.sqrt(jnp.sum(jnp.square(w.astype(jnp.float32)), axis=axes, keepdims=True))
    return norms, norms > np.float32(max_value)


def _project(w: jax.Array, max_value: float) -> jax.Array:
    norms, outside = _outside(w, max_value)
    scale = np.float32(max_value) / jnp.where(outside, norms, np.float32(1))
    projected = (w.astype(jnp.float32) * scale).astype(w.dtype)
    return jnp.where(outside, projected, w)


def project_max_norm(params, max_value: float, *, ndims: Sequence[int] = (2,)):
    r"""Projects every kernel's units onto the ball :math:`\lVert w_j \rVert_2 \le c`.

    .. math::

       w_j \leftarrow w_j \min\left(1, \frac{c}{\lVert w_j \rVert_2}\right)

    for each unit :math:`j` (Srivastava et al. 2014, max-norm), with :math:`c` =
    ``max_value``.

    A leaf whose rank is in ``ndims`` is a kernel whose last axis indexes the units; the
    norm runs over all its other axes (the columns of a 2-D ``(in, out)`` kernel; pass
    ``ndims=(2, 4)`` to include ``(kh, kw, in, out)`` convolution kernels). Biases and any
    other leaf are returned unchanged, as are units already inside the ball.

    Args:
      params: a pytree of arrays.
      max_value: the radius ``c > 0``.
      ndims: the ranks of the leaves to project.

    Returns:
      A pytree like ``params``.

    Raises:
      ValueError: ``max_value <= 0`` or a rank in ``ndims`` below 2.

    Examples:
      >>> import jax.numpy as jnp
      >>> w = jnp.array([[3.0, 0.3], [4.0, 0.4]])  # column norms 5 and 0.5
      >>> project_max_norm({"kernel": w, "bias": jnp.array([9.0, 9.0])}, 1.0)["kernel"]
      Array([[0.6, 0.3],
             [0.8, 0.4]], dtype=float32)

    References:
      Srivastava et al. "Dropout". JMLR 2014, section 5.1.
    """
    value, ndims = _check(max_value, ndims)
    return jax.tree.map(lambda w: _project(w, value) if jnp.ndim(w) in ndims else w, params)


def max_norm(max_value: float, *, ndims: Sequence[int] = (2,)) -> optax.GradientTransformation:
    """An optax transform that keeps ``params + updates`` inside the max-norm ball.

    ``update(updates, state, params)`` returns ``project(params + updates) - params`` for
    the units that would leave the ball and ``updates`` itself for every other unit, so
    ``optax.apply_updates(params, updates)`` lands on the projection (up to one rounding).
    Chain it LAST, after the optimiser has produced the final step:
    ``optax.chain(optax.sgd(lr, momentum=0.9), max_norm(3.0))``. It needs ``params``.

    Args:
      max_value: the radius ``c > 0``.
      ndims: the ranks of the leaves to constrain, see :func:`project_max_norm`.

    Returns:
      An ``optax.GradientTransformation`` with an empty state.

    Raises:
      ValueError: bad ``max_value`` or ``ndims``; ``update`` called without ``params``.

    Examples:
      >>> import jax.numpy as jnp, optax
      >>> tx = optax.chain(optax.sgd(1.0), max_norm(1.0))
      >>> params = {"kernel": jnp.zeros((2, 1))}
      >>> updates, _ = tx.update({"kernel": jnp.array([[-3.0], [-4.0]])},
      ...                        tx.init(params), params)
      >>> optax.apply_updates(params, updates)["kernel"]
      Array([[0.6],
             [0.8]], dtype=float32)

    References:
      Srivastava et al. "Dropout". JMLR 2014, section 5.1.
    """
    value, ndims = _check(max_value, ndims)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def one(update, param):
        if jnp.ndim(param) not in ndims:
            return update
        new = param + update.astype(param.dtype)
        _, outside = _outside(new, value)
        step = (_project(new, value) - param).astype(update.dtype)
        return jnp.where(outside, step, update)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("max_norm needs params: call update(updates, state, params)")
        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(init_fn, update_fn)
