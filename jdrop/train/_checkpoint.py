"""Orbax checkpoints of a training run: arrays, data position and loop state.

A checkpoint at step ``s`` (``<workdir>/checkpoints/<s>/``) holds these items:

* ``state``: the :class:`~jdrop.train.TrainState` (parameters, BatchNorm statistics,
  optimiser state, step, base key) through ``ocp.args.StandardSave``;
* ``carry``: the recurrent carry, when the run has one (needed to resume in the middle
  of an epoch of language modelling);
* ``best``: the parameters of the best evaluation, when the run keeps them;
* ``meta``: JSON with the data position (``epoch``, ``step_in_epoch``), the
  early-stopping state and which optional items exist.

Typed PRNG keys are stored as their ``uint32`` key data and rewrapped on restore. Arrays
are restored straight into the shardings of a target (the freshly initialised state), so
the same code restores on one process or many. ``orbax-checkpoint`` is imported when a
:class:`Checkpointer` is built, not when ``jdrop.train`` is imported.
"""

from __future__ import annotations

import os

import jax

__all__ = ["Checkpointer"]


def _is_key(x) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key
    )


def _to_saveable(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _abstract(tree):
    """Shape, dtype and sharding of every leaf of ``tree`` (keys as their key data)."""

    def leaf(x):
        x = jax.random.key_data(x) if _is_key(x) else x
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)

    return jax.tree.map(leaf, tree)


def _from_saved(restored, target):
    def leaf(saved, like):
        if _is_key(like):
            return jax.random.wrap_key_data(saved, impl=jax.random.key_impl(like))
        return saved

    return jax.tree.map(leaf, restored, target)


class Checkpointer:
    """Saves and restores a run's checkpoints with ``orbax.checkpoint.CheckpointManager``.

    Args:
      directory: where the checkpoints go (created when missing).
      max_to_keep: how many of the latest checkpoints are kept.

    Examples:
      >>> import tempfile, jax.numpy as jnp
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     ckpt = Checkpointer(tmp)
      ...     ckpt.save(7, {"w": jnp.ones(2)}, meta={"epoch": 1})
      ...     state, meta, _, _ = ckpt.restore({"w": jnp.zeros(2)})
      ...     ckpt.close()
      >>> state["w"], meta["epoch"], ckpt.latest_step
      (Array([1., 1.], dtype=float32), 1, 7)
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 2):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self.latest_step = self._manager.latest_step()

    def save(self, step: int, state, *, meta: dict, carry=None, best=None) -> None:
        """Writes checkpoint ``step`` (asynchronously: call :meth:`wait` or :meth:`close`).

        Args:
          step: the training step (the checkpoint's name).
          state: the pytree of arrays to save (a ``TrainState``).
          meta: a JSON-serialisable dict.
          carry: optional pytree (the recurrent carry).
          best: optional pytree (the best evaluation's parameters).
        """
        args = self._ocp.args
        items = {"state": args.StandardSave(_to_saveable(state))}
        meta = dict(meta, has_carry=carry is not None, has_best=best is not None)
        # StandardSave needs a container, not a bare array: wrap the optional items.
        if carry is not None:
            items["carry"] = args.StandardSave({"carry": _to_saveable(carry)})
        if best is not None:
            items["best"] = args.StandardSave({"best": _to_saveable(best)})
        items["meta"] = args.JsonSave(meta)
        self._manager.save(int(step), args=args.Composite(**items))
        self.latest_step = int(step)

    def restore(self, state_target, *, carry_target=None, best_target=None, step=None):
        """Reads checkpoint ``step`` (default: the latest) into the targets' shardings.

        Args:
          state_target: a pytree like the saved state (shapes, dtypes, shardings).
          carry_target: a pytree like the saved carry (used when the checkpoint has one).
          best_target: a pytree like the saved best parameters (likewise).
          step: which checkpoint; the latest when ``None``.

        Returns:
          ``(state, meta, carry, best)``; ``carry``/``best`` are ``None`` when absent.

        Raises:
          FileNotFoundError: when there is no checkpoint to restore.
        """
        step = self.latest_step if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        args = self._ocp.args
        meta = self._manager.restore(step, args=args.Composite(meta=args.JsonRestore()))["meta"]
        items = {"state": args.StandardRestore(_abstract(state_target))}
        targets = {"state": state_target}
        for name, target in (("carry", carry_target), ("best", best_target)):
            if meta.get(f"has_{name}") and target is not None:
                items[name] = args.StandardRestore({name: _abstract(target)})
                targets[name] = target
        restored = self._manager.restore(step, args=args.Composite(**items))
        out = {"state": _from_saved(restored["state"], state_target)}
        for name in ("carry", "best"):
            if name in targets:
                out[name] = _from_saved(restored[name][name], targets[name])
        return out["state"], meta, out.get("carry"), out.get("best")

    def wait(self) -> None:
        """Blocks until every save has been written."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
