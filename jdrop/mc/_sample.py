"""Monte-Carlo dropout: ``T`` stochastic forward passes as one vectorised program.

MC dropout (Gal and Ghahramani 2016) keeps dropout on at test time and averages ``T``
stochastic passes. Here a pass is any pure function ``fn(key, *args)`` (a Flax NNX model
turned into ``apply`` with ``nnx.split``/``nnx.merge``, a Linen ``apply``, plain JAX), and
the ``T`` passes are ``jax.vmap(fn, in_axes=(0, None, ...))`` over the keys
``jax.random.split(key, T)``:

* **The deterministic trunk runs once.** ``vmap`` batches only what depends on the key.
  Everything before the first dropout (the convolutional trunk of a CNN, an encoder, the
  embeddings) keeps its unbatched shape and is computed once for all ``T`` samples; only
  the layers after the first dropout run ``T`` times. With ``chunk_size`` the samples are
  computed ``chunk_size`` at a time in a ``lax.map`` loop; the trunk does not depend on the
  loop variable and XLA hoists it out of the loop, so it still runs once.
* **Bounded memory.** :func:`reduce`, :func:`predictive_classification` and
  :func:`predictive_regression` fold each chunk of samples into a running summary
  (``lax.scan``), so peak memory is set by ``chunk_size``, not by ``num_samples``.
* **Reproducible bits.** Sample ``i`` always uses ``jax.random.split(key, T)[i]``, whatever
  the chunking or the number of devices (the keys are split once, then cut into chunks).
* **Sharding.** ``mesh`` with ``batch_axis_name`` spreads the examples over devices
  (``jax.jit`` + ``NamedSharding``: each device runs the whole network on its slice of the
  batch); ``sample_axis_name`` (for :func:`sample`) spreads the samples, each device running
  its own chunks. jdrop's dropout masks (and ``jax.random``'s partitionable threefry) are
  keyed by each element's global position, so the devices draw exactly the masks of the
  unsharded program. Per-example summaries need no communication at all; the scalar
  regression metrics need one all-reduce (see :func:`predictive_regression`). The
  streaming summaries shard the batch only: splitting the samples of a running float sum
  over devices would make its summation order depend on the device count.

What is bitwise identical, and why. Samples (:func:`sample`) are bitwise equal for every
``chunk_size`` and on 1, 2, 4 or 8 devices along either mesh axis, and the summaries are
bitwise equal with and without batch sharding. This rests on XLA computing each row
(example, sample) of a matrix product or convolution the same way whatever the number of
rows: XLA:CPU does for two or more rows, while a single-row product takes a matrix-vector
path whose last bit can differ, so keep ``chunk_size * batch >= 2`` and two or more
examples per device. The summaries also avoid two compiler choices that were seen to
differ between sharded and unsharded programs: folding ``log(count)`` or ``x / count`` at
compile time (the count is passed as the literal ``T``) and the order of ``jnp.mean``
over the points (a fixed pairwise tree of elementwise adds). Bitwise identity is
therefore checked by the tests for the programs they compile; it is not a promise XLA
makes for every program.

Speed. By default the layers after the first dropout run for all ``T`` samples at once;
on CPU a ``chunk_size`` of about 10 can be faster, because one chunk's activations stay
in cache (``experiments/benchmarks/bench_mc.py``).

References:
  Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
  Uncertainty in Deep Learning". ICML 2016.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jdrop._keys import as_key
from jdrop._validation import is_concrete as _is_concrete
from jdrop.uncertainty._metrics import (
    ClassificationSummary,
    ClassificationUncertainty,
    RegressionSummary,
    RegressionUncertainty,
)

__all__ = [
    "predictive_classification",
    "predictive_regression",
    "reduce",
    "sample",
]

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------
# Validation and keys.
# --------------------------------------------------------------------------------------


def _positive_int(value, name: str) -> int:
    """``value`` as an int ``>= 1``; ``ValueError`` naming the argument otherwise."""
    if isinstance(value, bool) or isinstance(value, jax.core.Tracer):
        raise ValueError(f"{name} must be a positive Python int, got {name}={value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive Python int, got {name}={value!r}") from None
    if out < 1:
        raise ValueError(f"{name} must be >= 1, got {name}={value!r}")
    return out


def _check_counts(num_samples, chunk_size) -> tuple[int, int]:
    """Validated ``(num_samples, chunk_size)``; ``chunk_size`` defaults to and is capped at T."""
    num_samples = _positive_int(num_samples, "num_samples")
    if chunk_size is None:
        return num_samples, num_samples
    return num_samples, min(_positive_int(chunk_size, "chunk_size"), num_samples)


def _check_fn(fn) -> None:
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(key, *args), got fn={fn!r}")


def _split_keys(key, num_samples: int) -> jax.Array:
    """``jax.random.split(key, T)`` in the caller's key style (typed, or legacy ``uint32[2]``)."""
    typed = as_key(key)
    keys = jax.random.split(typed, num_samples)
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        return keys
    return jax.random.key_data(keys)


def _pad_keys(keys: jax.Array, total: int) -> jax.Array:
    """Extends ``keys`` to ``total`` entries by repeating them (padding is computed, then cut)."""
    count = keys.shape[0]
    if total == count:
        return keys
    return keys[np.arange(total) % count]


def _vmapped(fn, num_args: int) -> Callable:
    """``keys -> vmap(fn)(keys, *args)``: the key is mapped, every other argument is not."""
    return jax.vmap(fn, in_axes=(0,) + (None,) * num_args)


# --------------------------------------------------------------------------------------
# Sharding plan.
# --------------------------------------------------------------------------------------


class _Plan(NamedTuple):
    """Where samples and examples live: ``mesh`` is ``None`` on the default device."""

    mesh: Mesh | None
    batch_axis: str | None
    sample_axis: str | None
    batch_argnums: tuple[int, ...]

    def axis_size(self, name: str | None) -> int:
        return 1 if name is None else self.mesh.shape[name]

    def constrain(self, x, spec: P):
        if self.mesh is None:
            return x
        return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, spec))


def _make_plan(mesh, batch_axis_name, sample_axis_name, batch_argnums, num_args) -> _Plan:
    if mesh is None:
        if batch_axis_name is not None or sample_axis_name is not None:
            raise ValueError(
                "batch_axis_name and sample_axis_name need a mesh: pass mesh=jax.sharding."
                f"Mesh(...), got batch_axis_name={batch_axis_name!r}, "
                f"sample_axis_name={sample_axis_name!r} with mesh=None"
            )
        return _Plan(None, None, None, ())
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, got mesh={mesh!r}")
    if batch_axis_name is None and sample_axis_name is None:
        raise ValueError(
            "a mesh needs batch_axis_name and/or sample_axis_name to say what it shards; "
            f"mesh.axis_names={mesh.axis_names}"
        )
    for name, value in (("batch_axis_name", batch_axis_name),
                        ("sample_axis_name", sample_axis_name)):
        if value is not None and value not in mesh.axis_names:
            raise ValueError(
                f"{name}={value!r} is not an axis of the mesh: mesh.axis_names="
                f"{mesh.axis_names}"
            )
    if batch_axis_name is not None and batch_axis_name == sample_axis_name:
        raise ValueError(
            f"batch_axis_name and sample_axis_name must differ, both are {batch_axis_name!r}"
        )
    if batch_argnums is None:
        argnums = tuple(range(num_args))
    else:
        if isinstance(batch_argnums, int):
            batch_argnums = (batch_argnums,)
        argnums = tuple(operator.index(i) for i in batch_argnums)
        for i in argnums:
            if not -num_args <= i < num_args:
                raise ValueError(
                    f"batch_argnums={tuple(batch_argnums)} is out of range for {num_args} "
                    "argument(s) after the key"
                )
        argnums = tuple(sorted({i % num_args for i in argnums}))
    return _Plan(mesh, batch_axis_name, sample_axis_name, argnums)


def _shard_args(args: tuple, plan: _Plan) -> tuple:
    """Places the leading axis of every leaf of the batched arguments on the batch axis."""
    if plan.batch_axis is None:
        return args
    size = plan.axis_size(plan.batch_axis)
    args = list(args)
    for i in plan.batch_argnums:
        def place(leaf, i=i):
            leaf = jnp.asarray(leaf)
            if leaf.ndim == 0 or leaf.shape[0] % size:
                raise ValueError(
                    f"argument {i} after the key is sharded over {size} devices on its leading "
                    f"(batch) axis, which needs a size divisible by {size}; got a leaf of "
                    f"shape {leaf.shape} (set batch_argnums to the arguments with a batch axis)"
                )
            return plan.constrain(leaf, P(plan.batch_axis))

        args[i] = jax.tree.map(place, args[i])
    return tuple(args)


def _check_batch_output(shape: tuple[int, ...], plan: _Plan) -> None:
    """A summary's leading (example) axis must split evenly over the batch axis."""
    size = plan.axis_size(plan.batch_axis)
    if shape[0] % size:
        raise ValueError(
            f"the function's output has {shape[0]} examples (shape {shape}), which do not "
            f"split evenly over the {size} devices of batch_axis_name={plan.batch_axis!r}"
        )


def _out_spec(ndim: int, plan: _Plan, lead: int) -> P:
    """Spec of a stacked output: ``lead`` sample-like axes, then the batch axis."""
    spec = [None] * ndim
    if plan.sample_axis is not None and ndim > 0:
        spec[0] = plan.sample_axis
    if plan.batch_axis is not None and ndim > lead:
        spec[lead] = plan.batch_axis
    return P(*spec)


def _constrain_outputs(out, plan: _Plan, lead: int):
    if plan.mesh is None:
        return out
    return jax.tree.map(lambda o: plan.constrain(o, _out_spec(o.ndim, plan, lead)), out)


def _replicate_exact(tree, plan: _Plan):
    """Copies batch-sharded arrays to every device, bit for bit, with one all-reduce.

    Each device writes its rows (as unsigned integers of the same width) into its own slot
    of a zero array and the slots are summed across devices: integer sums with a single
    non-zero term per slot are exact in any order, so every device receives exactly the
    rows of the unsharded array (``-0.0`` and NaN payloads included). Every leaf goes in
    the same all-reduce.
    """
    leaves, treedef = jax.tree.flatten(tree)
    if plan.batch_axis is None or not leaves:
        return tree
    axis, size = plan.batch_axis, plan.axis_size(plan.batch_axis)

    def gather(*local):
        index = jax.lax.axis_index(axis)
        words = [
            jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{x.dtype.itemsize * 8}"))
            for x in local
        ]
        slots = [
            jax.lax.dynamic_update_index_in_dim(
                jnp.zeros((size,) + w.shape, w.dtype), w, index, axis=0
            )
            for w in words
        ]
        summed = jax.lax.psum(slots, axis)
        return [
            jax.lax.bitcast_convert_type(s.reshape((-1,) + s.shape[2:]), x.dtype)
            for s, x in zip(summed, local, strict=True)
        ]

    specs = [P(axis)] * len(leaves)
    out = jax.shard_map(
        gather, mesh=plan.mesh, in_specs=tuple(specs), out_specs=[P()] * len(leaves)
    )(*leaves)
    return jax.tree.unflatten(treedef, out)


def _fixed_order_mean(x: jax.Array) -> jax.Array:
    """Mean of all elements, summed in a fixed pairwise tree of elementwise adds.

    ``jnp.mean`` lowers to an XLA reduce whose summation order depends on how the compiler
    fuses and vectorises it, which differs between programs; elementwise adds are never
    reassociated, so this order (and the bits) are the same in every program.
    """
    flat = x.reshape(-1)
    count = flat.shape[0]
    while flat.shape[0] > 1:
        if flat.shape[0] % 2:
            flat = jnp.concatenate([flat, jnp.zeros((1,), flat.dtype)])
        flat = flat[0::2] + flat[1::2]
    return flat[0] * np.asarray(1 / count, x.dtype)


# --------------------------------------------------------------------------------------
# Sampling.
# --------------------------------------------------------------------------------------


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
    not depend on the key (the trunk before the first dropout) is computed once. With
    ``chunk_size`` the keys are cut into ``ceil(T / chunk_size)`` chunks (the last one
    padded with repeated keys whose outputs are dropped) and a ``lax.map`` runs one
    ``vmap`` chunk at a time; the result is bitwise equal to the unchunked one.

    Args:
      fn: a pure function ``fn(key, *args)`` returning any pytree of arrays; it must accept
        the key style you pass (jdrop's functions take both).
      key: typed key (``jax.random.key``) or legacy ``uint32[2]`` key; ``fn`` receives keys
        of the same style.
      *args: the other arguments of ``fn``, shared by every sample.
      num_samples: ``T >= 1``, a Python int.
      chunk_size: samples computed at once (memory grows with it); ``None`` for all ``T``
        at once. Capped at ``T``.
      mesh: a ``jax.sharding.Mesh`` to spread the work over, or ``None``.
      batch_axis_name: mesh axis that shards the leading (batch) axis of every leaf of the
        batched arguments and axis 1 of every output leaf with two or more axes.
      sample_axis_name: mesh axis that shards the samples (axis 0 of every output leaf);
        each device computes ``ceil(T / (chunk_size * n))`` chunks (``chunk_size``
        defaults to ``ceil(T / n)`` here). No communication when ``T`` is a multiple of
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
      >>> bool((chunked == out).all())
      True

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning". ICML 2016.
    """
    _check_fn(fn)
    plan = _make_plan(mesh, batch_axis_name, sample_axis_name, batch_argnums, len(args))
    groups = plan.axis_size(plan.sample_axis)
    if chunk_size is None and groups > 1:
        num_samples = _positive_int(num_samples, "num_samples")
        chunk_size = -(-num_samples // groups)
    num_samples, chunk_size = _check_counts(num_samples, chunk_size)
    args = _shard_args(args, plan)
    keys = _split_keys(key, num_samples)
    chunk = _vmapped(fn, len(args))
    if groups == 1 and chunk_size == num_samples:
        return _constrain_outputs(chunk(keys, *args), plan, lead=1)
    per_group = -(-num_samples // (chunk_size * groups))
    total = groups * per_group * chunk_size
    keys = _pad_keys(keys, total).reshape((groups, per_group, chunk_size) + keys.shape[1:])
    keys = plan.constrain(keys, P(plan.sample_axis))

    def run_chunk(chunk_keys):
        return chunk(chunk_keys, *args)

    out = jax.vmap(lambda group_keys: jax.lax.map(run_chunk, group_keys))(keys)
    out = _constrain_outputs(out, plan, lead=3)

    def flatten(leaf):
        leaf = leaf.reshape((total,) + leaf.shape[3:])
        return leaf if total == num_samples else leaf[:num_samples]

    return _constrain_outputs(jax.tree.map(flatten, out), plan, lead=1)


# --------------------------------------------------------------------------------------
# Streaming reductions.
# --------------------------------------------------------------------------------------


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
      chunk_size: samples per chunk (``None``: one chunk of ``T``).
      init: the initial accumulator, a pytree of arrays.
      update: ``update(acc, chunk) -> acc`` where ``chunk`` is ``fn``'s output pytree with a
        leading chunk axis; must keep the accumulator's structure, shapes and dtypes.
      finalize: ``finalize(acc) -> result``; the identity when ``None``.
      mesh, batch_axis_name, batch_argnums: shard the batch as in :func:`sample`. Results
        are bitwise identical on any number of devices when ``update`` and ``finalize``
        work example by example; a reduction over the batch inside them becomes an
        all-reduce whose float summation order depends on the device count.

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
    _check_fn(fn)
    if not callable(update):
        raise TypeError(f"update must be callable as update(acc, chunk), got update={update!r}")
    plan = _make_plan(mesh, batch_axis_name, None, batch_argnums, len(args))
    num_samples, chunk_size = _check_counts(num_samples, chunk_size)
    args = _shard_args(args, plan)
    keys = _split_keys(key, num_samples)
    chunk = _vmapped(fn, len(args))
    num_full, rest = divmod(num_samples, chunk_size)

    def step(acc, chunk_keys):
        return update(acc, _constrain_outputs(chunk(chunk_keys, *args), plan, lead=1)), None

    acc = init
    if num_full == 1:
        acc, _ = step(acc, keys[:chunk_size])
    elif num_full > 1:
        full = keys[: num_full * chunk_size].reshape((num_full, chunk_size) + keys.shape[1:])
        acc, _ = jax.lax.scan(step, acc, full)
    if rest:
        acc, _ = step(acc, keys[num_full * chunk_size :])
    return acc if finalize is None else finalize(acc)


def _with_static_count(summary, num_samples: int):
    """The summary with its sample count as a literal (it is exactly ``num_samples``).

    Whether XLA sees the count as a constant (and folds ``log(count)`` or ``x / count`` at
    compile time, with other rounding than at run time) would otherwise depend on how the
    loop was compiled, which differs between a sharded and an unsharded program.
    """
    return summary._replace(count=jnp.asarray(num_samples, summary.count.dtype))


def _output_struct(fn, key, args):
    """Shape and dtype of one sample of ``fn`` (nothing is computed)."""
    return jax.eval_shape(fn, _split_keys(key, 1)[0], *args)


def predictive_classification(
    logits_fn: Callable,
    key,
    *args,
    num_samples: int,
    chunk_size: int | None = None,
    mesh: Mesh | None = None,
    batch_axis_name: str | None = None,
    batch_argnums: int | Sequence[int] | None = None,
) -> ClassificationUncertainty:
    """MC-dropout predictive distribution and uncertainties, streamed over samples.

    With ``log p_t = log_softmax(logits_fn(key_t, *args))`` for ``t < T``:
    ``mean_log_probs = logsumexp_t(log p_t) - log T`` (in log space, stable),
    ``expected_entropy = -(1/T) sum_t sum_k p_tk log p_tk``,
    ``mutual_information = H[p̄] - expected_entropy`` (BALD) and
    ``class_variance = Var_t[p_tk]``. The running statistics are those of
    :class:`jdrop.uncertainty.ClassificationSummary`; the values equal
    :func:`jdrop.uncertainty.classification_uncertainty` of the samples of
    :func:`sample` to float32 rounding.

    Every summary is per example, so with ``batch_axis_name`` each device summarises its
    own examples and the compiled program has no cross-device communication at all.

    Args:
      logits_fn: ``logits_fn(key, *args) -> (N, K)`` logits.
      key: typed or legacy key.
      *args: the other arguments of ``logits_fn``.
      num_samples: ``T >= 1``.
      chunk_size: samples per chunk; memory is bounded by ``chunk_size * N * K`` plus
        the network's activations for one chunk.
      mesh, batch_axis_name, batch_argnums: shard the batch as in :func:`sample`.

    Returns:
      A :class:`jdrop.uncertainty.ClassificationUncertainty` of ``(N, K)`` and ``(N,)``
      arrays.

    Raises:
      ValueError: as :func:`sample`, or if ``logits_fn`` does not return an ``(N, K)``
        floating-point array.

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> logits_fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> u = predictive_classification(logits_fn, jax.random.key(0), jnp.eye(2, 3) * 4,
      ...                               num_samples=1000, chunk_size=100)
      >>> u.mean_log_probs.shape, u.mutual_information.shape
      ((2, 3), (2,))
      >>> bool((u.mutual_information > 0).all())
      True

    References:
      Gal, Y., Islam, R. and Ghahramani, Z. "Deep Bayesian Active Learning with Image
      Data". ICML 2017. Houlsby, N., Huszár, F., Ghahramani, Z. and Lengyel, M. "Bayesian
      Active Learning for Classification and Preference Learning". 2011.
    """
    _check_fn(logits_fn)
    num_samples = _positive_int(num_samples, "num_samples")
    struct = _output_struct(logits_fn, key, args)
    if not (
        isinstance(struct, jax.ShapeDtypeStruct)
        and len(struct.shape) == 2
        and jnp.issubdtype(struct.dtype, jnp.floating)
    ):
        raise ValueError(
            f"logits_fn must return one (N, K) floating-point array of logits, got {struct}"
        )
    plan = _make_plan(mesh, batch_axis_name, None, batch_argnums, len(args))
    args = _shard_args(args, plan)
    _check_batch_output(struct.shape, plan)
    init = ClassificationSummary.init(*struct.shape, dtype=struct.dtype)
    if plan.batch_axis is not None:
        init = jax.tree.map(lambda a: plan.constrain(a, P(plan.batch_axis) if a.ndim else P()),
                            init)
    return reduce(
        logits_fn, key, *args, num_samples=num_samples, chunk_size=chunk_size, init=init,
        update=lambda summary, logits: summary.update(logits, from_logits=True),
        finalize=lambda summary: _with_static_count(summary, num_samples).finalize(),
        mesh=mesh, batch_axis_name=batch_axis_name, batch_argnums=batch_argnums,
    )


def predictive_regression(
    fn: Callable,
    key,
    *args,
    num_samples: int,
    chunk_size: int | None = None,
    targets=None,
    tau=None,
    mesh: Mesh | None = None,
    batch_axis_name: str | None = None,
    batch_argnums: int | Sequence[int] | None = None,
) -> RegressionUncertainty:
    """MC-dropout regression: predictive mean, variances and test log-likelihood, streamed.

    With ``yhat_t = fn(key_t, *args)`` for ``t < T``: ``mean = (1/T) sum_t yhat_t``,
    ``epistemic_variance = (1/T) sum_t (yhat_t - mean)^2``,
    ``total_variance = epistemic_variance + 1/tau``, and Gal's test log-likelihood

        ``ll = (1/N) sum_n [logsumexp_t(-tau/2 ||y_n - yhat_tn||^2) - log T
        - (D/2) log 2 pi + (D/2) log tau]``

    accumulated as a running ``logsumexp`` (:class:`jdrop.uncertainty.RegressionSummary`),
    and ``rmse = sqrt(mean((mean - y)^2))``. Values equal
    :func:`jdrop.uncertainty.regression_uncertainty` of the samples to float32 rounding.

    With ``batch_axis_name`` each device summarises its own points; the two scalars (a
    mean over all points) then need the per-point terms of every device: they are copied
    exactly with one all-reduce and averaged in the order of the unsharded program, so
    the result is bitwise the same on any number of devices.

    Args:
      fn: ``fn(key, *args) -> (N,)`` or ``(N, D)`` predictions.
      key: typed or legacy key.
      *args: the other arguments of ``fn``.
      num_samples: ``T >= 1``.
      chunk_size: samples per chunk.
      targets: optional ``y`` shaped like one sample, for ``log_likelihood`` (with
        ``tau``) and ``rmse``.
      tau: optional model precision (inverse observation-noise variance), ``> 0``, for
        ``total_variance`` and ``log_likelihood``.
      mesh, batch_axis_name, batch_argnums: shard the batch as in :func:`sample`
        (``targets`` are sharded like the batch).

    Returns:
      A :class:`jdrop.uncertainty.RegressionUncertainty`; ``total_variance`` is ``None``
      without ``tau``, ``log_likelihood`` without ``targets`` or ``tau``, ``rmse`` without
      ``targets``.

    Raises:
      ValueError: as :func:`sample`; ``fn`` not returning ``(N,)`` or ``(N, D)`` floats;
        ``targets`` of another shape; a concrete ``tau`` not positive and finite.

    Examples:
      >>> import jax, jax.numpy as jnp, jdrop
      >>> fn = lambda key, x: jdrop.dropout(key, x, 0.5)
      >>> u = predictive_regression(fn, jax.random.key(0), jnp.ones(4), num_samples=2000,
      ...                           chunk_size=500, targets=jnp.ones(4), tau=1.0)
      >>> print(jnp.round(u.mean, 1), jnp.round(u.epistemic_variance, 1))
      [1. 1. 1. 1.] [1. 1. 1. 1.]
      >>> print(f"{float(u.log_likelihood):.2f}")  # log(0.5 N(1; 0, 1) + 0.5 N(1; 2, 1))
      -1.42

    References:
      Gal, Y. and Ghahramani, Z. "Dropout as a Bayesian Approximation: Representing Model
      Uncertainty in Deep Learning". ICML 2016.
    """
    _check_fn(fn)
    struct = _output_struct(fn, key, args)
    if not (
        isinstance(struct, jax.ShapeDtypeStruct)
        and len(struct.shape) in (1, 2)
        and jnp.issubdtype(struct.dtype, jnp.floating)
    ):
        raise ValueError(
            f"fn must return one (N,) or (N, D) floating-point array, got {struct}"
        )
    shape, dtype = struct.shape, struct.dtype
    num_samples = _positive_int(num_samples, "num_samples")
    plan = _make_plan(mesh, batch_axis_name, None, batch_argnums, len(args))
    args = _shard_args(args, plan)
    _check_batch_output(shape, plan)
    if targets is not None:
        targets = jnp.asarray(targets)
        if targets.shape != shape:
            raise ValueError(
                f"targets.shape={targets.shape} does not match one sample of fn, "
                f"shape={shape}"
            )
        targets = plan.constrain(targets.astype(dtype), P(plan.batch_axis))
    use_ll = targets is not None and tau is not None
    summary = RegressionSummary.init(
        shape, 1.0 if tau is None else tau, y=targets if use_ll else None, dtype=dtype
    )
    if plan.batch_axis is not None:
        summary = summary._replace(
            **{
                name: plan.constrain(getattr(summary, name), P(plan.batch_axis))
                for name in ("mean", "m2", "y", "log_sum_lik")
                if getattr(summary, name) is not None
            }
        )
    summary = reduce(
        fn, key, *args, num_samples=num_samples, chunk_size=chunk_size, init=summary,
        update=RegressionSummary.update, mesh=mesh, batch_axis_name=batch_axis_name,
        batch_argnums=batch_argnums,
    )
    # The count is exactly T: use the literal, and multiply by the reciprocal explicitly,
    # so that XLA folds and rewrites the same way in sharded and unsharded programs.
    variance = summary.m2 * np.asarray(1 / num_samples, dtype)
    total_variance = None if tau is None else variance + 1 / summary.tau
    per_point = {}
    if use_ll:
        dim = 1 if len(shape) == 1 else shape[1]
        offset = -math.log(num_samples) - 0.5 * dim * _LOG_2PI
        if _is_concrete(tau):
            offset = np.asarray(offset + 0.5 * dim * math.log(float(tau)), dtype)
        else:
            offset = offset + 0.5 * dim * jnp.log(summary.tau)
        per_point["ll"] = summary.log_sum_lik + offset
    if targets is not None:
        per_point["sq"] = jnp.square(summary.mean - targets)
    per_point = _replicate_exact(per_point, plan)
    log_likelihood = _fixed_order_mean(per_point["ll"]) if use_ll else None
    rmse = jnp.sqrt(_fixed_order_mean(per_point["sq"])) if targets is not None else None
    return RegressionUncertainty(summary.mean, variance, total_variance, log_likelihood, rmse)
