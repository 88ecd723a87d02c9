"""The training state: a pytree of the model's arrays, the optimiser's state, step and key.

An NNX model is split into a static ``graphdef`` (kept outside the state) and two
``nnx.State`` trees: the trainable ``nnx.Param`` leaves and everything else the model keeps
(BatchNorm's running statistics, ...). Gradients and the optimiser see only the former.
``nnx.merge(graphdef, state.params, state.model_state)`` gives the model back.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jdrop._keys import as_key
from jdrop.nn._apply import split_module
from jdrop.train._distributed import replicate, replicated_sharding

__all__ = ["TrainState", "create_train_state", "merge_model", "split_model"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Everything a training step reads and writes (a pytree; donated to each step).

    Attributes:
      params: the model's ``nnx.Param`` leaves (an ``nnx.State``).
      model_state: the model's other variables, e.g. ``nnx.BatchStat`` (an ``nnx.State``).
      opt_state: the optax optimiser's state for ``params``.
      step: the number of optimiser updates done so far (int32 scalar).
      key: the run's base key; step ``t`` uses ``jax.random.fold_in(key, t)``.
    """

    params: nnx.State
    model_state: nnx.State
    opt_state: optax.OptState
    step: jax.Array
    key: jax.Array


@functools.lru_cache(maxsize=16)
def _jitted_init(init, sharding):
    return jax.jit(init, out_shardings=sharding)


def split_model(model: nnx.Module):
    """``(graphdef, params, model_state)``: the model's ``nnx.Param`` leaves and the rest.

    :func:`jdrop.nn._apply.split_module` with the filters ``nnx.Param, ...``.

    Examples:
      >>> from flax import nnx
      >>> graphdef, params, rest = split_model(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))
      >>> sorted(params.to_pure_dict())
      ['bias', 'kernel']
    """
    return split_module(model, nnx.Param, ...)


def merge_model(graphdef, state: TrainState) -> nnx.Module:
    """The model with the state's parameters and variables (a new module object)."""
    return nnx.merge(graphdef, state.params, state.model_state)


def create_train_state(model: nnx.Module, tx: optax.GradientTransformation, key, mesh):
    """Splits ``model``, replicates it over ``mesh`` and initialises the optimiser.

    Every process must pass the same model (e.g. built from the same seed) and key.

    Args:
      model: the NNX model (left unchanged; the state holds copies of its arrays).
      tx: the optax optimiser.
      key: the run's base key (typed or legacy ``uint32[2]``).
      mesh: the device mesh (see :func:`jdrop.train.make_mesh`).

    Returns:
      ``(graphdef, state)`` with every leaf of ``state`` replicated over ``mesh``.

    Examples:
      >>> import jax, optax
      >>> from flax import nnx
      >>> from jdrop.train import make_mesh
      >>> model = nnx.Linear(2, 3, rngs=nnx.Rngs(0))
      >>> _, state = create_train_state(model, optax.sgd(0.1), jax.random.key(1), make_mesh())
      >>> int(state.step), state.params["kernel"].value.sharding.spec
      (0, P())
    """
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(f"tx must be an optax.GradientTransformation, got {type(tx).__name__}")
    graphdef, params, model_state = split_model(model)
    params, model_state = replicate((params, model_state), mesh)
    sharding = replicated_sharding(mesh)
    with jax.numpy_dtype_promotion("standard"):  # optax is not written for strict promotion
        opt_state = _jitted_init(tx.init, sharding)(params)
    step, key = replicate((jnp.zeros((), jnp.int32), as_key(key)), mesh)
    return graphdef, TrainState(params, model_state, opt_state, step, key)
