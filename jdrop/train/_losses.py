"""Ready-made ``loss_fn``s for the loop: classification and regression.

Both build ``loss_fn(model, batch, key, carry) -> (loss, (metrics, carry))`` (see
:mod:`jdrop.train.step`) for a model called as ``model(x, key=key)``; with
``train_flag=True`` it is called as ``model(x, key=key, train=key is not None)``
(BatchNorm models). Language models carry a state and write their own ``loss_fn``.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

__all__ = ["classification_loss", "regression_loss"]


def _call(model, x, key, train_flag: bool):
    if train_flag:
        return model(x, key=key, train=key is not None)
    return model(x, key=key)


def classification_loss(*, inputs: str = "inputs", labels: str = "labels", train_flag=False):
    """Softmax cross-entropy with integer labels; reports ``accuracy`` too.

    ``loss = mean_n(-log softmax(logits_n)[y_n])``, computed in float32.

    Args:
      inputs: the batch's key for the model's input.
      labels: the batch's key for the integer class labels.
      train_flag: pass ``train=`` to the model (BatchNorm, ResNets).

    Returns:
      A ``loss_fn`` for :func:`jdrop.train.train`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss_fn = classification_loss()
      >>> model = lambda x, key: jnp.stack([x, -x], axis=-1)
      >>> batch = {"inputs": jnp.array([2.0, -2.0]), "labels": jnp.array([0, 0])}
      >>> loss, (metrics, carry) = loss_fn(model, batch, None, None)
      >>> metrics["accuracy"]
      Array(0.5, dtype=float32)
    """

    def loss_fn(model, batch, key, carry):
        logits = _call(model, batch[inputs], key, train_flag).astype(jnp.float32)
        y = batch[labels]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        accuracy = (jnp.argmax(logits, axis=-1) == y).astype(jnp.float32).mean()
        return loss, ({"accuracy": accuracy}, carry)

    return loss_fn


def regression_loss(*, inputs: str = "inputs", targets: str = "targets", train_flag=False):
    """Mean squared error; reports ``rmse`` too.

    ``loss = mean((f(x) - y)**2)`` over every element, computed in float32.

    Args:
      inputs: the batch's key for the model's input.
      targets: the batch's key for the regression targets (same shape as the output).
      train_flag: pass ``train=`` to the model (BatchNorm).

    Returns:
      A ``loss_fn`` for :func:`jdrop.train.train`.

    Examples:
      >>> import jax.numpy as jnp
      >>> loss_fn = regression_loss()
      >>> batch = {"inputs": jnp.array([1.0, 2.0]), "targets": jnp.array([1.0, 4.0])}
      >>> loss, (metrics, _) = loss_fn(lambda x, key: x, batch, None, None)
      >>> loss, metrics["rmse"]
      (Array(2., dtype=float32), Array(1.4142135, dtype=float32))
    """

    def loss_fn(model, batch, key, carry):
        pred = _call(model, batch[inputs], key, train_flag).astype(jnp.float32)
        loss = jnp.mean(jnp.square(pred - batch[targets].astype(jnp.float32)))
        return loss, ({"rmse": jnp.sqrt(loss)}, carry)

    return loss_fn
