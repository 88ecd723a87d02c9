"""L1 and L2 weight penalties, added to the loss, on the parameters a filter selects.

    L1(w) = scale * sum_i |w_i|
    L2(w) = scale / 2 * sum_i w_i**2      (gradient: scale * w, i.e. SGD weight decay)

Sums run over the selected leaves only; by default :func:`is_kernel` selects the weight
matrices and convolution kernels (leaves named ``"kernel"``), not biases, BatchNorm scales
or embeddings. A filter is a function ``where(path, value) -> bool`` where ``path`` is the
tuple of names leading to the leaf, e.g. ``("layers", 0, "kernel")``.

References:
  Tibshirani. "Regression shrinkage and selection via the lasso". JRSS B 1996 (L1).
  Krogh, Hertz. "A simple weight decay can improve generalization". NIPS 1991 (L2).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._validation import check_number

__all__ = ["all_params", "is_kernel", "l1_penalty", "l2_penalty", "leaf_path", "select"]

Filter = Callable[[tuple, jax.Array], bool]


def leaf_path(path) -> tuple:
    """Names along a ``jax.tree_util`` key path, without NNX's trailing ``.value``.

    Examples:
      >>> import jax
      >>> [leaf_path(p) for p, _ in jax.tree_util.tree_leaves_with_path({"a": [1, 2]})]
      [('a', 0), ('a', 1)]
    """
    names = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            names.append(entry.key)
        elif isinstance(entry, jax.tree_util.SequenceKey):
            names.append(entry.idx)
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            names.append(entry.name)
        elif isinstance(entry, jax.tree_util.FlattenedIndexKey):
            names.append(entry.key)
        else:
            names.append(str(entry))
    if names and names[-1] == "value":
        names.pop()
    return tuple(names)


def is_kernel(path: tuple, value) -> bool:
    """The default filter: leaves named ``"kernel"`` (``nnx.Linear``, ``nnx.Conv``, ...).

    Examples:
      >>> is_kernel(("dense", "kernel"), None), is_kernel(("dense", "bias"), None)
      (True, False)
    """
    del value
    return bool(path) and path[-1] == "kernel"


def all_params(path: tuple, value) -> bool:
    """A filter that selects every leaf.

    Examples:
      >>> all_params(("bn", "scale"), None)
      True
    """
    del path, value
    return True


def select(params, where: Filter = is_kernel) -> list[jax.Array]:
    """The leaves of ``params`` that ``where(path, value)`` selects, in tree order.

    Examples:
      >>> import numpy as np
      >>> params = {"kernel": np.ones(2), "bias": np.zeros(2)}
      >>> [x.tolist() for x in select(params)]
      [[1.0, 1.0]]
    """
    if not callable(where):
        raise TypeError(f"where must be a callable (path, value) -> bool, got where={where!r}")
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return [value for path, value in leaves if where(leaf_path(path), value)]


def _penalty(params, scale, where, term) -> jax.Array:
    total = jnp.zeros((), jnp.float32)
    for w in select(params, where):
        total = total + jnp.sum(term(jnp.asarray(w).astype(jnp.float32)))
    return total * jnp.asarray(scale, jnp.float32)


def l1_penalty(params, scale, *, where: Filter = is_kernel) -> jax.Array:
    r"""L1 penalty :math:`\lambda \sum_i |w_i|` over the leaves ``where`` selects (float32 scalar).

    :math:`\lambda` = ``scale``.

    Args:
      params: a pytree of parameters (an ``nnx.State``, a dict, ...).
      scale: the penalty's weight, a float ``>= 0``.
      where: the filter ``(path, value) -> bool``; kernels only by default.

    Returns:
      A float32 scalar.

    Raises:
      ValueError: for a negative or non-finite ``scale``.

    Examples:
      >>> import numpy as np
      >>> params = {"kernel": np.array([1.0, -2.0], np.float32), "bias": np.ones(2, np.float32)}
      >>> l1_penalty(params, 0.5)
      Array(1.5, dtype=float32)
    """
    scale = check_number(scale, "scale", minimum=0, allow_traced=True)
    return _penalty(params, scale, where, jnp.abs)


def l2_penalty(params, scale, *, where: Filter = is_kernel) -> jax.Array:
    r"""L2 penalty :math:`\frac{\lambda}{2} \sum_i w_i^2` over the leaves ``where`` selects.

    A float32 scalar, :math:`\lambda` = ``scale``. The gradient is :math:`\lambda w`: the
    same update as SGD with weight decay :math:`\lambda`.

    Args, Returns and Raises: as :func:`l1_penalty`.

    Examples:
      >>> import numpy as np
      >>> params = {"kernel": np.array([1.0, -2.0], np.float32), "bias": np.ones(2, np.float32)}
      >>> l2_penalty(params, 0.5)
      Array(1.25, dtype=float32)
    """
    scale = check_number(scale, "scale", minimum=0, allow_traced=True)
    return _penalty(params, scale, where, jnp.square) * np.float32(0.5)
