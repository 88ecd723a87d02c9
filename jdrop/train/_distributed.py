"""Data parallelism over a ``Mesh`` of every device, on one host or many.

The batch is sharded along its leading axis over the mesh's ``"data"`` axis; the training
state is replicated. On several hosts (after ``jax.distributed.initialize``) every process
feeds only its own rows, and :func:`global_batch` stitches them into one global array with
``jax.make_array_from_process_local_data``; the same code runs on one process.

Host values (numpy arrays, a freshly initialised model) become global arrays through
``jax.make_array_from_callback``, which works whether or not the mesh spans processes
(every process must then hold the same values, e.g. from the same seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = [
    "DATA_AXIS",
    "data_sharding",
    "global_batch",
    "make_mesh",
    "replicate",
    "replicated_sharding",
    "row_sharding",
    "shard_rows",
]

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"data"`` over ``devices`` (default: every device).

    Args:
      devices: the devices, in order; ``jax.devices()`` (all processes' devices, process 0
        first) when omitted.

    Returns:
      ``Mesh(devices, ("data",))``.

    Examples:
      >>> mesh = make_mesh()
      >>> mesh.axis_names, mesh.size == jax.device_count()
      (('data',), True)
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError(f"devices must be a non-empty sequence, got devices={devices!r}")
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def _check_mesh(mesh: Mesh) -> Mesh:
    if not isinstance(mesh, Mesh) or DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"mesh must be a jax.sharding.Mesh with a 'data' axis, got mesh={mesh!r}")
    return mesh


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Leading axis split over ``"data"``, other axes whole: ``NamedSharding(mesh, P("data"))``.

    Examples:
      >>> data_sharding(make_mesh()).spec
      P('data',)
    """
    return NamedSharding(_check_mesh(mesh), P(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array: ``NamedSharding(mesh, P())``.

    Examples:
      >>> replicated_sharding(make_mesh()).spec
      P()
    """
    return NamedSharding(_check_mesh(mesh), P())


def _num_data_shards(mesh: Mesh) -> int:
    return int(mesh.shape[DATA_AXIS])


def global_batch(local_batch, mesh: Mesh):
    """Builds the global, row-sharded batch from this process's rows.

    Process ``p`` of ``P`` passes rows ``[p*B/P, (p+1)*B/P)`` of the global batch of ``B``
    rows; the result is the ``B``-row array sharded over the mesh's ``"data"`` axis. With
    one process this is a sharded ``device_put``.

    Args:
      local_batch: a pytree of arrays with the same number of rows (leading axis).
      mesh: the mesh (see :func:`make_mesh`).

    Returns:
      The same pytree of global ``jax.Array`` with ``data_sharding(mesh)``.

    Raises:
      ValueError: if the global number of rows is not divisible by the size of the
        ``"data"`` axis, or the leaves disagree on the number of rows.

    Examples:
      >>> import numpy as np
      >>> batch = global_batch({"x": np.zeros((16, 3), np.float32)}, make_mesh())
      >>> batch["x"].shape, batch["x"].sharding.spec
      ((16, 3), P('data',))
    """
    sharding = data_sharding(mesh)
    leaves = [np.asarray(x) for x in jax.tree.leaves(local_batch)]
    rows = {x.shape[0] if x.ndim else None for x in leaves}
    if len(rows) != 1 or None in rows:
        raise ValueError(
            "every array of a batch needs the same number of rows (leading axis), got "
            f"shapes {[x.shape for x in leaves]}"
        )
    global_rows = rows.pop() * jax.process_count()
    shards = _num_data_shards(mesh)
    if global_rows % shards:
        raise ValueError(
            f"the global batch has {global_rows} rows, not divisible by the {shards} devices "
            "of the mesh's 'data' axis; pick a batch size divisible by jax.device_count()"
        )
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def _put(value, sharding: NamedSharding) -> jax.Array:
    """Host (or single-device) value -> global array with ``sharding``, keys included."""
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        data = _put(jax.random.key_data(value), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(value))
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree, mesh: Mesh):
    """Copies every leaf of ``tree`` to every device of ``mesh`` (typed PRNG keys too).

    Every process must pass the same values (e.g. a model built from the same seed).

    Examples:
      >>> import numpy as np
      >>> replicate({"w": np.ones(3, np.float32)}, make_mesh())["w"].sharding.spec
      P()
    """
    sharding = replicated_sharding(mesh)
    return jax.tree.map(lambda x: _put(x, sharding), tree)


def row_sharding(value, mesh: Mesh) -> NamedSharding:
    """Rows over ``"data"`` when the leading axis divides evenly, else replicated."""
    shape = np.shape(value)
    if shape and shape[0] % _num_data_shards(mesh) == 0:
        return data_sharding(mesh)
    return replicated_sharding(mesh)


def shard_rows(tree, mesh: Mesh):
    """Global host values -> arrays sharded by rows where possible (for an RNN's carry).

    A leaf whose leading axis is divisible by the ``"data"`` axis is split by rows (the
    carry of row ``b`` lives with row ``b`` of the batch); other leaves are replicated.
    Every process passes the same, global values.

    Examples:
      >>> import numpy as np
      >>> carry = shard_rows({"h": np.zeros((8, 4), np.float32)}, make_mesh())
      >>> carry["h"].sharding.spec
      P('data',)
    """
    return jax.tree.map(lambda x: _put(x, row_sharding(x, mesh)), tree)
