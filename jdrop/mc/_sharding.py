"""Sharding for Monte-Carlo sampling: where the samples and the examples live on a mesh.

A :class:`ShardingPlan` says which mesh axis shards the batch (the leading axis of the
batched arguments and of each example-indexed output) and which shards the samples.
Everything here is placement: :func:`shard_args` and :func:`constrain_outputs` add
``with_sharding_constraint`` s; :func:`replicate_exact` and :func:`fixed_order_mean` make
the averaging of the two scalar regression metrics independent of the device count (bitwise,
given the same per-point values).

jdrop's dropout masks (and ``jax.random``'s partitionable threefry) are keyed by each
element's global position, so a sharded program draws exactly the masks of the unsharded
one.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jdrop._validation import check_int

__all__ = [
    "ShardingPlan",
    "check_batch_output",
    "constrain_outputs",
    "fixed_order_mean",
    "make_plan",
    "replicate_exact",
    "shard_args",
    "shard_batch_leaves",
]


class ShardingPlan(NamedTuple):
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
        sharding = NamedSharding(self.mesh, spec)
        if _has_explicit_axes(self.mesh):
            # Explicit axes (jax.make_mesh's default): the sharding is part of the type, set
            # with reshard; with_sharding_constraint only accepts Auto axes.
            return jax.sharding.reshard(x, sharding)
        return jax.lax.with_sharding_constraint(x, sharding)


def _has_explicit_axes(mesh) -> bool:
    explicit = getattr(jax.sharding.AxisType, "Explicit", None)
    return explicit is not None and explicit in tuple(getattr(mesh, "axis_types", ()) or ())


def make_plan(mesh, batch_axis_name, sample_axis_name, batch_argnums, num_args) -> ShardingPlan:
    if mesh is None:
        if batch_axis_name is not None or sample_axis_name is not None:
            raise ValueError(
                "batch_axis_name and sample_axis_name need a mesh: pass mesh=jax.sharding."
                f"Mesh(...), got batch_axis_name={batch_axis_name!r}, "
                f"sample_axis_name={sample_axis_name!r} with mesh=None"
            )
        return ShardingPlan(None, None, None, ())
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
        argnums = tuple(check_int(i, "batch_argnums") for i in batch_argnums)
        for i in argnums:
            if not -num_args <= i < num_args:
                raise ValueError(
                    f"batch_argnums={tuple(batch_argnums)} is out of range for {num_args} "
                    "argument(s) after the key"
                )
        argnums = tuple(sorted({i % num_args for i in argnums}))
    return ShardingPlan(mesh, batch_axis_name, sample_axis_name, argnums)


def shard_args(args: tuple, plan: ShardingPlan) -> tuple:
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


def check_batch_output(shape: tuple[int, ...], plan: ShardingPlan) -> None:
    """A summary's leading (example) axis must split evenly over the batch axis."""
    size = plan.axis_size(plan.batch_axis)
    if shape[0] % size:
        raise ValueError(
            f"the function's output has {shape[0]} examples (shape {shape}), which do not "
            f"split evenly over the {size} devices of batch_axis_name={plan.batch_axis!r}"
        )


def _out_spec(ndim: int, plan: ShardingPlan, lead: int) -> P:
    """Spec of a stacked output: ``lead`` sample-like axes, then the batch axis."""
    spec = [None] * ndim
    if plan.sample_axis is not None and ndim > 0:
        spec[0] = plan.sample_axis
    if plan.batch_axis is not None and ndim > lead:
        spec[lead] = plan.batch_axis
    return P(*spec)


def constrain_outputs(out, plan: ShardingPlan, lead: int):
    if plan.mesh is None:
        return out
    return jax.tree.map(lambda o: plan.constrain(o, _out_spec(o.ndim, plan, lead)), out)


def replicate_exact(tree, plan: ShardingPlan):
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


def fixed_order_mean(x: jax.Array) -> jax.Array:
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


def shard_batch_leaves(tree, plan: ShardingPlan):
    """Places every leaf with an axis on the batch axis (a summary's leaves lead with N)."""
    if plan.batch_axis is None:
        return tree
    return jax.tree.map(lambda a: plan.constrain(a, P(plan.batch_axis) if a.ndim else P()), tree)
