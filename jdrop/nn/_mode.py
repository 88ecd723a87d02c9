"""Training or inference: how every jdrop layer and model decides, and the missing-key error.

A layer or model is called as ``module(x, *, key=None, deterministic=None)``. The mode is

    deterministic = the call's ``deterministic`` if not ``None``, else ``module.deterministic``

where ``module.deterministic`` is a constructor argument (default ``False``: training) that
``module.eval()`` and ``module.train()`` set on every submodule (the Flax NNX convention).
Training needs a key; a missing one is an error, never a silent switch to inference.
"""

from __future__ import annotations

from flax import nnx

from jdrop._keys import split_key

__all__ = [
    "StochasticModule",
    "is_deterministic",
    "layer_keys",
    "missing_key_error",
    "training_key",
]


class StochasticModule(nnx.Module):
    """Base of jdrop's layers and models: a ``deterministic`` attribute, the default mode.

    ``module.eval()`` / ``module.train()`` set it on every submodule (NNX's
    ``set_attributes``), and ``nnx.view(module, deterministic=...)`` on a copy, through
    :meth:`set_view`, as for ``flax.nnx.Dropout``.

    Examples:
      >>> from flax import nnx
      >>> from jdrop.models import MLP
      >>> model = MLP(4, (8,), 2, rngs=nnx.Rngs(0))
      >>> view = nnx.view(model, deterministic=True)
      >>> view.deterministic, view.dropouts[0].deterministic, model.deterministic
      (True, True, False)
    """

    deterministic: bool | None = False

    def set_view(self, deterministic: bool | None = None):
        """Sets ``deterministic`` when given (called by ``nnx.view``)."""
        if deterministic is not None:
            self.deterministic = deterministic


def is_deterministic(module, deterministic) -> bool:
    """The effective mode: the call argument when given, else ``module.deterministic``.

    Raises:
      ValueError: both are ``None`` (the module was built with ``deterministic=None``).

    Examples:
      >>> from jdrop.nn._layers import Dropout
      >>> is_deterministic(Dropout(0.5), None), is_deterministic(Dropout(0.5), True)
      (False, True)
    """
    value = module.deterministic if deterministic is None else deterministic
    if value is None:
        raise ValueError(
            f"{type(module).__name__} got deterministic=None at construction and at the "
            "call: pass deterministic=True (inference) or False (training) to the call, or "
            "use model.eval() / model.train()"
        )
    return bool(value)


def missing_key_error(module) -> ValueError:
    """The error for a call in training mode without a key: it says how to run inference."""
    name = type(module).__name__
    return ValueError(
        f"{name} is in training mode (deterministic=False) and got no PRNG key: pass "
        "key=jax.random.key(seed) to train with dropout; for inference call it with "
        "deterministic=True, e.g. model(x, deterministic=True), or call model.eval() first "
        "(model.train() switches back)"
    )


def training_key(module, key, deterministic):
    """``None`` in inference, else ``key``; training without a key raises.

    Args:
      module: the layer or model (its ``deterministic`` attribute is the default mode).
      key: the call's PRNG key, or ``None``.
      deterministic: the call's ``deterministic`` argument, or ``None``.

    Returns:
      ``None`` when the effective mode is deterministic, else ``key``.

    Raises:
      ValueError: training mode and ``key is None`` (the message says how to run
        inference).

    Examples:
      >>> import jax
      >>> from jdrop.nn._layers import Dropout
      >>> training_key(Dropout(0.5), jax.random.key(0), True) is None
      True
      >>> training_key(Dropout(0.5), None, None)
      Traceback (most recent call last):
      ...
      ValueError: Dropout is in training mode (deterministic=False) and got no PRNG key: ...
    """
    if is_deterministic(module, deterministic):
        return None
    if key is None:
        raise missing_key_error(module)
    return key


def layer_keys(module, key, deterministic, n: int) -> tuple[tuple, bool]:
    """``(keys, deterministic)``: ``n`` per-layer keys and the effective mode of a model call.

    The keys are :func:`jdrop._keys.split_key` of ``key`` (``n`` ``None`` s in inference),
    one per stochastic position; pass ``deterministic`` on to the layers.

    Raises:
      ValueError: training mode and ``key is None``.

    Examples:
      >>> import jax
      >>> from jdrop.nn._layers import Dropout
      >>> keys, deterministic = layer_keys(Dropout(0.5), jax.random.key(0), None, 3)
      >>> len(keys), deterministic
      (3, False)
      >>> layer_keys(Dropout(0.5), None, True, 2)
      ((None, None), True)
    """
    key = training_key(module, key, deterministic)
    return split_key(key, n), key is None
