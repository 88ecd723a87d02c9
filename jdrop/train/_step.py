"""The jitted training and evaluation steps.

A step is built around one user function, the same for classification, regression and
language modelling::

    loss_fn(model, batch, key, carry) -> (loss, (metrics, new_carry))

* ``model``: the NNX model (BatchNorm statistics it updates while training are kept);
* ``batch``: a dict of global arrays, rows sharded over the mesh's ``"data"`` axis;
* ``key``: the step's key ``fold_in(state.key, state.step)`` while training, ``None`` when
  evaluating. The training step calls ``model.train()`` and the evaluation step
  ``model.eval()`` first, so ``model(x, key=key)`` trains with dropout in one and runs
  deterministically in the other (BatchNorm models: ``train=key is not None``);
* ``carry``: what the previous step returned as ``new_carry`` (an RNN's hidden state in
  language modelling, reset at each epoch), ``None`` when the task has none;
* ``loss``: a float32 scalar, the mean over the global batch; ``metrics``: a dict of
  scalars (``"loss"`` is added unless present).

The training step adds the L1/L2 penalties to the loss, differentiates with respect to the
``nnx.Param`` leaves, applies the optax update and donates the old state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh

from jdrop.train._distributed import replicated_sharding, row_sharding
from jdrop.train._regularizers import Filter, is_kernel, l1_penalty, l2_penalty
from jdrop.train._state import TrainState

__all__ = ["LossFn", "make_eval_step", "make_train_step", "step_key"]

LossFn = Callable  # (model, batch, key | None, carry) -> (loss, (metrics, new_carry))


def step_key(key: jax.Array, step) -> jax.Array:
    """The key of training step ``step``: ``jax.random.fold_in(key, step)``.

    A function of the base key and the step only, so a resumed run draws the same masks
    as one never stopped.

    Examples:
      >>> import jax
      >>> k = jax.random.key(0)
      >>> bool((jax.random.key_data(step_key(k, 3)) ==
      ...       jax.random.key_data(jax.random.fold_in(k, 3))).all())
      True
    """
    return jax.random.fold_in(key, step)


def _constrain(tree, shardings):
    return jax.tree.map(jax.lax.with_sharding_constraint, tree, shardings)


def _carry_shardings(carry, mesh: Mesh):
    return jax.tree.map(lambda x: row_sharding(x, mesh), carry)


def _with_loss(loss, metrics) -> dict:
    if not isinstance(metrics, dict):
        raise TypeError(
            "loss_fn must return (loss, (metrics, new_carry)) with metrics a dict of scalars, "
            f"got metrics of type {type(metrics).__name__}"
        )
    return {"loss": loss, **metrics}


def _split_output(output):
    try:
        loss, (metrics, new_carry) = output
    except (TypeError, ValueError) as e:
        raise TypeError(
            "loss_fn must return (loss, (metrics, new_carry)), e.g. (loss, ({'accuracy': "
            f"acc}}, None)), got {output!r}"
        ) from e
    return loss, metrics, new_carry


def make_train_step(
    graphdef,
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    penalty_where: Filter = is_kernel,
):
    """The jitted step ``(state, batch, carry) -> (state, metrics, carry)``.

    The state is donated (its buffers are reused for the new state) and kept replicated;
    the carry keeps its row sharding (see :func:`jdrop.train.shard_rows`).

    Args:
      graphdef: the model's graph definition (from :func:`jdrop.train.split_model`).
      loss_fn: ``(model, batch, key, carry) -> (loss, (metrics, new_carry))``.
      tx: the optax optimiser.
      mesh: the device mesh.
      l1: weight of the L1 penalty on the leaves ``penalty_where`` selects.
      l2: weight of the L2 penalty (``l2 / 2 * sum w**2``) on the same leaves.
      penalty_where: the penalties' filter (kernels only by default).

    Returns:
      A jitted function. ``metrics`` holds ``"loss"`` (the data term), ``"penalty"`` (when
      ``l1`` or ``l2`` is set) and ``loss_fn``'s metrics, all replicated scalars. The same
      arguments (the same ``loss_fn`` and ``tx`` objects) give the same function, so a
      second run, or a resumed one, in the same process does not compile again.
    """
    return _cached(_build_train_step, graphdef, loss_fn, tx, mesh, l1, l2, penalty_where)


def _cached(build, *args):
    """``build(*args)``, memoised on the arguments (hashable ones; a few entries)."""
    try:
        hash(args)
    except TypeError:
        return build(*args)
    return _memo(build, *args)


@functools.lru_cache(maxsize=16)
def _memo(build, *args):
    return build(*args)


def _build_train_step(graphdef, loss_fn, tx, mesh, l1, l2, penalty_where):
    replicated = replicated_sharding(mesh)

    def objective(params, state: TrainState, batch, key, carry):
        model = nnx.merge(graphdef, params, state.model_state, copy=True)
        model.train()  # dropout on (deterministic=False), whatever mode the model was split in
        loss, metrics, new_carry = _split_output(loss_fn(model, batch, key, carry))
        metrics = _with_loss(loss, metrics)
        total = loss
        if l1 or l2:
            penalty = jnp.zeros((), jnp.float32)
            if l1:
                penalty = penalty + l1_penalty(params, l1, where=penalty_where)
            if l2:
                penalty = penalty + l2_penalty(params, l2, where=penalty_where)
            metrics["penalty"] = penalty
            total = loss + penalty.astype(loss.dtype)
        _, _, model_state = nnx.split(model, nnx.Param, ...)
        return total, (metrics, new_carry, model_state)

    def train_step(state: TrainState, batch, carry):
        key = step_key(state.key, state.step)
        grad_fn = jax.grad(objective, has_aux=True)
        grads, (metrics, new_carry, model_state) = grad_fn(state.params, state, batch, key, carry)
        # optax mixes Python floats with int32 counts (Adam's bias correction): give it
        # standard promotion even when the caller runs with strict promotion.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(params, model_state, opt_state, state.step + 1, state.key)
        new_state = jax.lax.with_sharding_constraint(new_state, replicated)
        metrics = jax.lax.with_sharding_constraint(metrics, replicated)
        new_carry = _constrain(new_carry, _carry_shardings(new_carry, mesh))
        return new_state, metrics, new_carry

    return jax.jit(train_step, donate_argnums=(0, 2))


def make_eval_step(graphdef, eval_fn, mesh: Mesh):
    """The jitted ``(params, model_state, batch, carry) -> (metrics, carry)``.

    Args:
      graphdef: the model's graph definition.
      eval_fn: ``(model, batch, carry) -> (metrics, new_carry)``; changes it makes to the
        model's variables are discarded.
      mesh: the device mesh.

    Returns:
      A jitted function (nothing donated but the carry); memoised like
      :func:`make_train_step`.
    """
    return _cached(_build_eval_step, graphdef, eval_fn, mesh)


def _build_eval_step(graphdef, eval_fn, mesh):
    replicated = replicated_sharding(mesh)

    def eval_step(params, model_state, batch, carry):
        model = nnx.merge(graphdef, params, model_state, copy=True)
        model.eval()  # deterministic: a model called with key=None runs inference
        metrics, new_carry = eval_fn(model, batch, carry)
        metrics = jax.lax.with_sharding_constraint(dict(metrics), replicated)
        new_carry = _constrain(new_carry, _carry_shardings(new_carry, mesh))
        return metrics, new_carry

    return jax.jit(eval_step, donate_argnums=(3,))


def eval_fn_from_loss(loss_fn: LossFn):
    """``eval_fn(model, batch, carry)`` that calls ``loss_fn`` with ``key=None``.

    Examples:
      >>> fn = eval_fn_from_loss(lambda m, b, k, c: (b * 2.0, ({"k": k is None}, c)))
      >>> fn(None, 1.0, None)
      ({'loss': 2.0, 'k': True}, None)
    """
    return _cached(_build_eval_fn, loss_fn)  # the same loss_fn, the same (compiled) eval_fn


def _build_eval_fn(loss_fn: LossFn):
    def eval_fn(model, batch, carry):
        loss, metrics, new_carry = _split_output(loss_fn(model, batch, None, carry))
        return _with_loss(loss, metrics), new_carry

    return eval_fn
