"""The default ``chunk_size``: as many samples at once as fit a memory budget.

``jax.vmap`` over ``T`` keys batches every value of ``fn`` that depends on the key (the
layers from the first dropout on); the values that do not (the trunk) are computed once.
Computing all ``T`` samples at once makes those batched values ``T`` times larger, and
once they outgrow the cache the program slows down several times (``bench_mc.py``: 3.4x
one forward pass at ``T = 50`` on CPU, against 1.1x for chunks of 1 to 25). So when
``chunk_size`` is not given it is

    largest = clip(budget // bytes_per_sample, 1, T)
    chunk_size = ceil(T / ceil(T / largest))      (balanced chunks)

where ``bytes_per_sample`` is the total size of the values in one pass of ``fn`` that
depend on the key, read from ``fn``'s jaxpr (an upper bound on one sample's working set:
XLA fuses most of them), and ``budget`` is :data:`CHUNK_BUDGET_BYTES` for the backend
(64 MiB on CPU; 2 GiB on GPU and TPU, whose memory bandwidth and parallelism favour large
chunks). Balancing keeps the padding of the last chunk (:func:`jdrop.mc.sample` pads it
with repeated keys) below the number of chunks. Pass ``chunk_size=num_samples`` to compute
every sample at once.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.extend as jex
import numpy as np

__all__ = ["CHUNK_BUDGET_BYTES", "auto_chunk_size", "key_dependent_bytes"]

#: Bytes of key-dependent values one chunk may hold, per backend (``"default"`` otherwise).
CHUNK_BUDGET_BYTES = {"cpu": 64 * 2**20, "default": 2 * 2**30}

# Parameters under which primitives keep the jaxpr they call (jit, custom_jvp/vjp, remat).
_SUB_JAXPRS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _nbytes(aval) -> int:
    itemsize = getattr(aval.dtype, "itemsize", 8)  # typed PRNG keys: two uint32 words
    return int(np.prod(aval.shape, dtype=np.int64)) * int(itemsize)


def _sub_jaxpr(eqn):
    for name in _SUB_JAXPRS:
        sub = eqn.params.get(name)
        sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr holds its Jaxpr
        if isinstance(sub, jex.core.Jaxpr) and len(sub.invars) == len(eqn.invars):
            return sub
    return None


def _dependent_bytes(jaxpr, dependent: list[bool]) -> tuple[int, list[bool]]:
    """Bytes of the values of ``jaxpr`` that depend on the ``dependent`` inputs."""
    depends = dict(zip(jaxpr.invars, dependent, strict=True))

    def of(var) -> bool:
        return not isinstance(var, jex.core.Literal) and depends.get(var, False)

    total = 0
    for eqn in jaxpr.eqns:
        inputs = [of(v) for v in eqn.invars]
        outputs = [False] * len(eqn.outvars)
        if any(inputs):
            sub = _sub_jaxpr(eqn)
            if sub is not None:
                inner, outputs = _dependent_bytes(sub, inputs)
                total += inner
            else:  # scan, while, cond...: their outputs, not their insides
                outputs = [True] * len(eqn.outvars)
                total += sum(_nbytes(v.aval) for v in eqn.outvars)
        depends.update(zip(eqn.outvars, outputs, strict=True))
    return total, [of(v) for v in jaxpr.outvars]


def key_dependent_bytes(fn: Callable, key, args: tuple) -> int:
    """Total bytes of the values in one pass ``fn(key, *args)`` that depend on ``key``.

    Args:
      fn: the pass, ``fn(key, *args)``.
      key: a typed key.
      args: the other arguments.

    Returns:
      The sum of the sizes of every intermediate value and output that ``jax.vmap`` over
      keys would batch (nothing is computed: ``fn`` is traced to a jaxpr).

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> fn = lambda key, x: jdrop.dropout(key, 2 * x, 0.5)  # 2 * x needs no key
      >>> key_dependent_bytes(fn, jax.random.key(0), (jnp.ones(1000),)) > 4000
      True
    """
    closed = jax.make_jaxpr(fn)(key, *args)
    num_key_leaves = len(jax.tree.leaves(key))
    dependent = [i < num_key_leaves for i in range(len(closed.jaxpr.invars))]
    return _dependent_bytes(closed.jaxpr, dependent)[0]


def auto_chunk_size(fn: Callable, key, args: tuple, num_samples: int) -> int:
    """The largest balanced chunk whose key-dependent values fit the backend's budget.

    ``largest = clip(budget // key_dependent_bytes(fn, key, args), 1, T)``, then
    ``ceil(T / ceil(T / largest))``; the budget is ``CHUNK_BUDGET_BYTES`` of the default
    backend (see the module docstring).

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> auto_chunk_size(fn, jax.random.key(0), (jnp.ones(3),), num_samples=50)
      50
    """
    budget = CHUNK_BUDGET_BYTES.get(jax.default_backend(), CHUNK_BUDGET_BYTES["default"])
    per_sample = max(key_dependent_bytes(fn, key, args), 1)
    largest = int(min(max(budget // per_sample, 1), num_samples))
    num_chunks = -(-num_samples // largest)
    return -(-num_samples // num_chunks)
