"""Monte-Carlo dropout: ``T`` stochastic forward passes as one vectorised program.

MC dropout (Gal and Ghahramani 2016) keeps dropout on at test time and averages ``T``
stochastic passes. Here a pass is any pure function ``fn(key, *args)`` (a Flax NNX model
turned into ``apply`` with ``nnx.split``/``nnx.merge``, a Linen ``apply``, plain JAX), and
the ``T`` passes are ``jax.vmap(fn, in_axes=(0, None, ...))`` over the keys
``jax.random.split(key, T)``:

* **The deterministic trunk runs once.** ``vmap`` batches only what depends on the key.
  Everything before the first dropout (the convolutional trunk of a CNN, an encoder, the
  embeddings) keeps its unbatched shape and is computed once for all ``T`` samples; only
  the layers after the first dropout run ``T`` times. The samples are computed
  ``chunk_size`` at a time in a ``lax.map`` loop; the trunk does not depend on the loop
  variable and XLA hoists it out of the loop, so it still runs once.
* **Fast by default.** ``chunk_size=None`` picks the largest chunk whose key-dependent
  values fit a memory budget (:mod:`jdrop.mc._chunking`: 64 MiB on CPU), so the batched
  layers' activations stay in cache; ``chunk_size=num_samples`` computes all at once.
* **Bounded memory.** :func:`reduce`, :func:`jdrop.mc.predictive_classification` and
  :func:`jdrop.mc.predictive_regression` fold each chunk of samples into a running
  summary (``lax.scan``), so peak memory is set by ``chunk_size``, not by ``num_samples``.
* **Reproducible masks.** Sample ``i`` always uses ``jax.random.split(key, T)[i]``,
  whatever the chunking or the number of devices (the keys are split once, then cut into
  chunks), so it draws the same dropout masks.
* **Sharding.** ``mesh`` with ``batch_axis_name`` spreads the examples over devices;
  ``sample_axis_name`` (for :func:`sample`) spreads the samples (:mod:`jdrop.mc._sharding`).

What is equal, and what is not. Chunked and unchunked samples (any ``chunk_size``, any
number of devices) use identical keys, hence identical dropout masks: anything computed
from the masks alone (the mask itself, ``dropout`` of an input) is bitwise the same. The
values after a matrix product or convolution may differ in the last bits (a relative
difference of about ``1e-7`` in float32, e.g. ``6e-8`` seen on a LeNet), because XLA may
compile a chunk of ``c`` samples with other matmul shapes, tilings or summation orders
than all ``T`` at once. Within one compiled program the samples are deterministic.

References:
  Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
  Uncertainty in Deep Learning". ICML 2016.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jdrop._keys import as_key
from jdrop._validation import check_callable, check_int
from jdrop.mc._chunking import auto_chunk_size
from jdrop.mc._sharding import ShardingPlan, constrain_outputs, make_plan, shard_args

__all__ = ["reduce", "sample"]


def check_num_samples(num_samples) -> int:
    """``num_samples`` as an int ``>= 1`` (``ValueError`` naming it otherwise)."""
    return check_int(num_samples, "num_samples", 1)


def choose_chunk_size(fn, key, args: tuple, num_samples: int, chunk_size) -> int:
    """A checked ``chunk_size`` capped at ``T``, or the automatic one when ``None``."""
    if chunk_size is None:
        return auto_chunk_size(fn, key, args, num_samples)
    return min(check_int(chunk_size, "chunk_size", 1), num_samples)


def check_fn(fn, name: str = "fn") -> None:
    check_callable(fn, name, f"{name}(key, *args)")


def _vmapped(fn, num_args: int) -> Callable:
    """``keys -> vmap(fn)(keys, *args)``: the key is mapped, every other argument is not."""
    return jax.vmap(fn, in_axes=(0,) + (None,) * num_args)


def _pad_keys(keys: jax.Array, total: int) -> jax.Array:
    """Extends ``keys`` to ``total`` entries by repeating them (padding is computed, then cut)."""
    count = keys.shape[0]
    if total == count:
        return keys
    return keys[np.arange(total) % count]


def sample(
    fn: Callable,
    key,
    *args,
    num_samples: int,
    chunk_size: int | None = None,
    mesh: Mesh | None = None,
    batch_axis_name: str | None = None,
    sample_axis_name: str | None = None,
    batch_argnums: int | Sequence[int] | None = None,
):
    """Runs ``num_samples`` stochastic passes ``fn(key_t, *args)`` and stacks their outputs.

    ``out[t] = fn(jax.random.split(key, T)[t], *args)`` for ``t < T``, computed as
    ``jax.vmap(fn, in_axes=(0, None, ...))`` over the keys: everything in ``fn`` that does
    not depend on the key (the trunk before the first dropout) is computed once. The keys
    are cut into ``ceil(T / chunk_size)`` chunks (the last one padded with repeated keys
    whose outputs are dropped) and a ``lax.map`` runs one ``vmap`` chunk at a time.
    Every ``chunk_size`` gives every sample the same key, hence the same dropout masks;
    values after a matrix product may differ in the last float bits between chunkings
    (see the module docstring).

    Args:
      fn: a pure function ``fn(key, *args)`` returning any pytree of arrays; it receives
        typed keys (``jax.random.key``) whatever the style of ``key``.
      key: typed key (``jax.random.key``) or legacy ``uint32[2]`` key.
      *args: the other arguments of ``fn``, shared by every sample.
      num_samples: ``T >= 1``, a Python int.
      chunk_size: samples computed at once (memory grows with it), capped at ``T``.
        ``None`` (default): the largest balanced chunk whose key-dependent values fit a
        memory budget (:func:`jdrop.mc._chunking.auto_chunk_size`); ``num_samples``: all
        at once.
      mesh: a ``jax.sharding.Mesh`` to spread the work over, or ``None``. Meshes with
        ``Auto`` or ``Explicit`` axes (``jax.make_mesh``'s default) both work; as JAX
        requires for explicit axes, call the jitted program under ``jax.set_mesh(mesh)``.
      batch_axis_name: mesh axis that shards the leading (batch) axis of every leaf of the
        batched arguments and axis 1 of every output leaf with two or more axes.
      sample_axis_name: mesh axis that shards the samples (axis 0 of every output leaf);
        each device computes ``ceil(T / (chunk_size * n))`` chunks (``chunk_size`` is at
        most ``ceil(T / n)`` by default). No communication when ``T`` is a multiple of
        ``n * chunk_size``.
      batch_argnums: which of ``args`` (0 is the first one after the key) carry a batch
        axis; ``None`` means all of them. Only used with ``batch_axis_name``.

    Returns:
      The pytree of ``fn``'s outputs with a leading axis of size ``T`` on every leaf.

    Raises:
      ValueError: ``num_samples`` or ``chunk_size`` not a positive int; axis names without
        a mesh or not in it; a batched leaf whose leading axis does not divide evenly.
      TypeError: ``fn`` not callable, ``mesh`` not a ``Mesh``, malformed ``key``.

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> out = sample(fn, jax.random.key(0), jnp.ones(3), num_samples=4)
      >>> out.shape, sorted(set(out.ravel().tolist()))
      ((4, 3), [0.0, 2.0])
      >>> chunked = sample(fn, jax.random.key(0), jnp.ones(3), num_samples=4, chunk_size=3)
      >>> bool((chunked == out).all())  # the same masks
      True

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning". ICML 2016.
    """
    check_fn(fn)
    plan = make_plan(mesh, batch_axis_name, sample_axis_name, batch_argnums, len(args))
    num_samples = check_num_samples(num_samples)
    key = as_key(key)
    groups = plan.axis_size(plan.sample_axis)
    if chunk_size is None:  # at most one device's share of the samples
        chunk_size = auto_chunk_size(fn, key, args, -(-num_samples // groups))
    chunk_size = choose_chunk_size(fn, key, args, num_samples, chunk_size)
    args = shard_args(args, plan)
    keys = jax.random.split(key, num_samples)
    chunk = _vmapped(fn, len(args))
    if groups == 1 and chunk_size == num_samples:
        return constrain_outputs(chunk(keys, *args), plan, lead=1)
    per_group = -(-num_samples // (chunk_size * groups))
    total = groups * per_group * chunk_size
    keys = _pad_keys(keys, total).reshape((groups, per_group, chunk_size) + keys.shape[1:])
    keys = plan.constrain(keys, P(plan.sample_axis))

    def run_chunk(chunk_keys):
        return chunk(chunk_keys, *args)

    out = jax.vmap(lambda group_keys: jax.lax.map(run_chunk, group_keys))(keys)
    out = constrain_outputs(out, plan, lead=3)

    def flatten(leaf):
        leaf = leaf.reshape((total,) + leaf.shape[3:])
        return leaf if total == num_samples else leaf[:num_samples]

    return constrain_outputs(jax.tree.map(flatten, out), plan, lead=1)


def reduce(
    fn: Callable,
    key,
    *args,
    num_samples: int,
    chunk_size: int | None = None,
    init: Any,
    update: Callable[[Any, Any], Any],
    finalize: Callable[[Any], Any] | None = None,
    mesh: Mesh | None = None,
    batch_axis_name: str | None = None,
    batch_argnums: int | Sequence[int] | None = None,
):
    """Folds ``T`` stochastic passes into a summary, never holding more than a chunk.

    ``acc = update(acc, samples[c])`` for each chunk ``c`` of the samples of
    :func:`sample` (leading axis ``chunk_size``; the last chunk holds the remaining
    ``T mod chunk_size`` samples when ``chunk_size`` does not divide ``T``), starting from
    ``init``, then ``finalize(acc)``. The full chunks run in a ``lax.scan`` whose carry is
    the accumulator, so memory is bounded by one chunk of samples plus the accumulator.

    Args:
      fn: a pure function ``fn(key, *args)`` returning a pytree of arrays.
      key: typed or legacy key.
      *args: the other arguments of ``fn``.
      num_samples: ``T >= 1``.
      chunk_size: samples per chunk; ``None`` chooses it as :func:`sample` does,
        ``num_samples`` gives one chunk of ``T``.
      init: the initial accumulator, a pytree of arrays.
      update: ``update(acc, chunk) -> acc`` where ``chunk`` is ``fn``'s output pytree with a
        leading chunk axis; must keep the accumulator's structure, shapes and dtypes.
      finalize: ``finalize(acc) -> result``; the identity when ``None``.
      mesh, batch_axis_name, batch_argnums: shard the batch as in :func:`sample`. When
        ``update`` and ``finalize`` work example by example, sharding adds no float
        operation: results are those of one device from the same samples (which may
        differ in the last bits after a matrix product compiled for the per-device
        batch); a reduction over the batch in them becomes an all-reduce whose float
        summation order depends on the device count.

    Returns:
      ``finalize(acc)``.

    Raises:
      ValueError, TypeError: as :func:`sample`.

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> total = reduce(fn, jax.random.key(0), jnp.ones(3), num_samples=10, chunk_size=4,
      ...                init=jnp.zeros(3), update=lambda acc, c: acc + c.sum(0))
      >>> bool((total == sample(fn, jax.random.key(0), jnp.ones(3), num_samples=10).sum(0)).all())
      True
    """
    check_fn(fn)
    check_callable(update, "update", "update(acc, chunk)")
    plan = make_plan(mesh, batch_axis_name, None, batch_argnums, len(args))
    num_samples = check_num_samples(num_samples)
    key = as_key(key)
    chunk_size = choose_chunk_size(fn, key, args, num_samples, chunk_size)
    acc = reduce_chunks(fn, key, args, num_samples, chunk_size, init, update, plan)
    return acc if finalize is None else finalize(acc)


def reduce_chunks(
    fn, key, args: tuple, num_samples: int, chunk_size: int, init, update,
    plan: ShardingPlan,
):
    """:func:`reduce` of checked arguments and a typed key, without the finaliser."""
    args = shard_args(args, plan)
    keys = jax.random.split(key, num_samples)
    chunk = _vmapped(fn, len(args))
    num_full, rest = divmod(num_samples, chunk_size)

    def step(acc, chunk_keys):
        return update(acc, constrain_outputs(chunk(chunk_keys, *args), plan, lead=1)), None

    acc = init
    if num_full == 1:
        acc, _ = step(acc, keys[:chunk_size])
    elif num_full > 1:
        full = keys[: num_full * chunk_size].reshape((num_full, chunk_size) + keys.shape[1:])
        acc, _ = jax.lax.scan(step, acc, full)
    if rest:
        acc, _ = step(acc, keys[num_full * chunk_size :])
    return acc
