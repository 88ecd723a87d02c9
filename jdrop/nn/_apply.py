"""A model turned into a pure ``apply(state, key, x)``, and the one ``nnx.split`` wrapper.

Every jdrop model takes its randomness as a call argument, ``model(x, key=key)``, and hands
each dropout layer a key of its own, split from the caller's key with
:func:`jdrop.nn.split_key`: no layer ever reuses another's key, and no RNG state hides in
the model.
:func:`pure_apply` then turns the model into a pure function of ``(state, key, x)``
(``nnx.split`` / ``nnx.merge``), which ``jax.jit``, ``jax.grad`` and ``jax.vmap`` take as
they are. A Monte-Carlo ensemble is a ``vmap`` over keys::

    apply_fn, state = pure_apply(model)
    keys = jax.random.split(key, 100)
    logits = jax.vmap(apply_fn, in_axes=(None, 0, None))(state, keys, x)   # (100, N, C)

``functools.partial(apply_fn, state)`` has the signature ``fn(key, x)`` that
``jdrop.mc.sample`` expects. Because nothing before the first dropout depends on the key,
``vmap`` leaves that deterministic trunk unbatched: it is computed once, not once per key.

References:
  Gal, Ghahramani. "Dropout as a Bayesian Approximation: Representing Model Uncertainty in
  Deep Learning". ICML 2016.
"""

from __future__ import annotations

from collections.abc import Callable

from flax import nnx

__all__ = ["pure_apply", "split_module"]


def split_module(model: nnx.Module, *filters) -> tuple:
    """``nnx.split(model, *filters)`` for a checked module: ``(graphdef, *states)``.

    The one wrapper over ``nnx.split``: :func:`pure_apply` and
    :func:`jdrop.train.split_model` build on it.

    Raises:
      TypeError: ``model`` is not a ``flax.nnx.Module``.

    Examples:
      >>> from flax import nnx
      >>> graphdef, params, rest = split_module(nnx.Linear(2, 3, rngs=nnx.Rngs(0)),
      ...                                       nnx.Param, ...)
      >>> sorted(params.to_pure_dict())
      ['bias', 'kernel']
    """
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model must be a flax.nnx.Module, got model={type(model).__name__}")
    return nnx.split(model, *filters)


def pure_apply(
    model: nnx.Module, *filters, return_state: bool = False
) -> tuple[Callable, object]:
    """Splits ``model`` into a pure ``apply_fn(state, key, *args, **kwargs)`` and its state.

    ``apply_fn`` merges the graph definition with ``state`` and calls
    ``model(*args, key=key, **kwargs)``; it closes over no array, so ``jax.jit``,
    ``jax.grad`` and ``jax.vmap(apply_fn, in_axes=(None, 0, None))`` (one output per key)
    apply directly. Use ``functools.partial(apply_fn, state)`` for ``fn(key, x)``.

    With ``filters`` (``nnx.split``'s filters, e.g. ``nnx.Param, ...``) the state is the
    tuple of the filtered states, ``(params, rest)``: differentiate the first, carry the
    rest. Models with BatchNorm (``train=True`` uses and updates batch statistics) need
    ``return_state=True`` while training: ``apply_fn`` then returns
    ``(output, new_state)``, ``new_state`` shaped like ``state`` and holding the updated
    running averages (an MC-dropout ``vmap`` over keys uses ``train=False``, where the
    state never changes). Python-valued keyword arguments such as ``train`` must stay static
    under transforms: ``jax.jit(apply_fn, static_argnames="train")`` or
    ``functools.partial(apply_fn, train=True)``.

    Args:
      model: a Flax NNX module whose ``__call__`` takes a ``key`` keyword argument.
      *filters: optional ``nnx.split`` filters; none gives one ``nnx.State``.
      return_state: also return the state after the call (BatchNorm running averages).

    Returns:
      ``(apply_fn, state)``.

    Examples:
      >>> import functools, jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> from jdrop.models._mlp import MLP
      >>> model = MLP(4, (8,), 3, input_rate=0.0, hidden_rate=0.5, rngs=nnx.Rngs(0))
      >>> apply_fn, state = pure_apply(model)
      >>> keys = jax.random.split(jax.random.key(1), 5)
      >>> jax.vmap(apply_fn, in_axes=(None, 0, None))(state, keys, jnp.ones((2, 4))).shape
      (5, 2, 3)
      >>> fn = functools.partial(apply_fn, state)      # fn(key, x)
      >>> x = jnp.ones((2, 4))
      >>> bool((fn(None, x, deterministic=True) == model(x, deterministic=True)).all())
      True
    """
    graphdef, *states = split_module(model, *filters)
    multiple = len(states) > 1

    def apply_fn(state, key, /, *args, **kwargs):
        parts = tuple(state) if multiple else (state,)
        module = nnx.merge(graphdef, *parts, copy=True)  # fresh Variables in this trace
        out = module(*args, key=key, **kwargs)
        if not return_state:
            return out
        _, *new = split_module(module, *filters)
        return out, (tuple(new) if multiple else new[0])

    return apply_fn, (tuple(states) if multiple else states[0])
