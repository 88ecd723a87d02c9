"""Ready-made ``loss_fn``s for the loop (classification, regression) and sequence losses.

Both build ``loss_fn(model, batch, key, carry) -> (loss, (metrics, carry))`` (see
:mod:`jdrop.train.step`) for a model called as ``model(x, key=key)``; with
``train_flag=True`` it is called as ``model(x, key=key, train=key is not None)``
(BatchNorm models). Language models carry a state and write their own ``loss_fn``.

Sequence losses over padded token batches (a ``mask``, ``True`` at real tokens, weights
every mean): :func:`label_smoothed_cross_entropy` (Szegedy et al. 2016; Vaswani et al.
2017), :func:`symmetric_kl` and :func:`rdrop_loss` (R-Drop, Liang et al. 2021).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jdrop._validation import check_number

__all__ = [
    "classification_loss",
    "label_smoothed_cross_entropy",
    "rdrop_loss",
    "regression_loss",
    "symmetric_kl",
]


def _call(model, x, key, train_flag: bool):
    if train_flag:
        return model(x, key=key, train=key is not None)
    return model(x, key=key)


def classification_loss(*, inputs: str = "inputs", labels: str = "labels", train_flag=False):
    r"""Softmax cross-entropy with integer labels; reports ``accuracy`` too.

    :math:`\mathcal{L} = -\frac{1}{N} \sum_n \log \operatorname{softmax}(z_n)_{y_n}` for
    logits :math:`z_n` and labels :math:`y_n`, computed in float32.

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
    r"""Mean squared error; reports ``rmse`` too.

    :math:`\mathcal{L} = \frac{1}{M} \sum_i (f(x)_i - y_i)^2` over all :math:`M` elements,
    computed in float32.

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


def _masked_mean(values, mask):
    """``sum(values * mask) / max(sum(mask), 1)`` (the mean over real tokens)."""
    if mask is None:
        return jnp.mean(values)
    mask = jnp.broadcast_to(jnp.asarray(mask), values.shape)
    total = jnp.sum(jnp.where(mask, values, 0.0))
    return total / jnp.maximum(jnp.sum(mask, dtype=jnp.float32), 1.0)


def _check_logits_labels(logits, labels, mask):
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits must be labels.shape + (vocab,), got logits.shape={logits.shape}, "
            f"labels.shape={labels.shape}"
        )
    if mask is not None and jnp.shape(mask) != labels.shape:
        raise ValueError(
            f"mask must have labels' shape {labels.shape}, got mask.shape={jnp.shape(mask)}"
        )
    return logits.astype(jnp.float32), labels


def label_smoothed_cross_entropy(logits, labels, mask=None, *, smoothing: float = 0.1):
    r"""Cross-entropy against label-smoothed targets, averaged over the real tokens.

    With :math:`V` classes and :math:`\epsilon` = ``smoothing`` the target is
    :math:`q = (1 - \epsilon)\, \mathrm{onehot}(y) + \epsilon / V` and, per token,

    .. math::

       \ell = -\sum_v q_v \log p_v
       = (1 - \epsilon)(-\log p_y) + \frac{\epsilon}{V} \sum_v (-\log p_v)

    (Szegedy et al. 2016, section 7; Vaswani et al. 2017 use :math:`\epsilon = 0.1`). The
    result is ``sum(loss * mask) / sum(mask)``; ``smoothing=0`` is the plain negative
    log-likelihood per token.

    Args:
      logits: ``(..., V)`` unnormalised log-probabilities.
      labels: ``(...)`` integer targets.
      mask: ``(...)`` boolean, ``True`` at real tokens (``None``: all).
      smoothing: :math:`\epsilon` in ``[0, 1)``.

    Returns:
      A float32 scalar.

    Raises:
      ValueError: mismatched shapes or ``smoothing`` outside ``[0, 1)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> logits = jnp.log(jnp.array([[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]))
      >>> labels, mask = jnp.array([0, 2]), jnp.array([True, False])
      >>> round(float(label_smoothed_cross_entropy(logits, labels, mask, smoothing=0.0)), 4)
      0.6931
      >>> round(float(label_smoothed_cross_entropy(logits, labels, mask, smoothing=0.3)), 4)
      0.8318

    References:
      Szegedy et al. "Rethinking the Inception Architecture for Computer Vision".
      CVPR 2016.
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017, section 5.4.
    """
    eps = check_number(smoothing, "smoothing", minimum=0)
    if eps >= 1:
        raise ValueError(f"smoothing must be in [0, 1), got smoothing={smoothing!r}")
    logits, labels = _check_logits_labels(logits, labels, mask)
    log_p = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_p, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    loss = nll if eps == 0 else (1.0 - eps) * nll - eps * jnp.mean(log_p, axis=-1)
    return _masked_mean(loss, mask)


def symmetric_kl(logits_a, logits_b, mask=None):
    r"""Symmetric KL divergence between two predictive distributions, per token, averaged.

    :math:`\mathrm{KL}_\mathrm{sym} = \frac12 \left(\mathrm{KL}(p_a \Vert p_b)
    + \mathrm{KL}(p_b \Vert p_a)\right)` with :math:`p` the softmax of the logits over
    the last axis, averaged over the real tokens (``mask``): R-Drop's consistency term
    (Liang et al. 2021, eq. 2). Both directions carry gradients (as in the paper).

    Args:
      logits_a: ``(..., V)`` logits of the first pass.
      logits_b: ``(..., V)`` logits of the second pass.
      mask: ``(...)`` boolean, ``True`` at real tokens (``None``: all).

    Returns:
      A float32 scalar ``>= 0``.

    Raises:
      ValueError: mismatched shapes.

    Examples:
      >>> import jax.numpy as jnp
      >>> a = jnp.log(jnp.array([[0.5, 0.5]])); b = jnp.log(jnp.array([[0.9, 0.1]]))
      >>> round(float(symmetric_kl(a, b)), 4), float(symmetric_kl(a, a))
      (0.4394, 0.0)

    References:
      Liang et al. "R-Drop: Regularized Dropout for Neural Networks". NeurIPS 2021.
    """
    logits_a, logits_b = jnp.asarray(logits_a), jnp.asarray(logits_b)
    if logits_a.shape != logits_b.shape:
        raise ValueError(
            f"logits_a and logits_b must have one shape, got {logits_a.shape} and "
            f"{logits_b.shape}"
        )
    if mask is not None and jnp.shape(mask) != logits_a.shape[:-1]:
        raise ValueError(
            f"mask must be logits.shape[:-1]={logits_a.shape[:-1]}, got "
            f"mask.shape={jnp.shape(mask)}"
        )
    log_a = jax.nn.log_softmax(logits_a.astype(jnp.float32))
    log_b = jax.nn.log_softmax(logits_b.astype(jnp.float32))
    kl = 0.5 * jnp.sum((jnp.exp(log_a) - jnp.exp(log_b)) * (log_a - log_b), axis=-1)
    return _masked_mean(kl, mask)


def rdrop_loss(logits_a, logits_b, labels, mask=None, *, alpha: float,
               smoothing: float = 0.0):
    r"""R-Drop: the loss of two dropout passes plus ``alpha`` times their symmetric KL.

    Liang et al. (2021) train on :math:`\mathcal{L} = \mathrm{CE}(p_1) + \mathrm{CE}(p_2)
    + \alpha\, \mathrm{KL}_\mathrm{sym}(p_1, p_2)`
    (eq. 3), :math:`p_1, p_2` the model's predictions for one batch under two independent
    dropout masks. Returned here halved, an overall scale that leaves the optimum (and
    :math:`\alpha`'s meaning) as in the paper and the loss comparable to a single pass:

    .. math::

       \mathcal{L} = \frac12 \left(\mathrm{CE}(p_1) + \mathrm{CE}(p_2)\right)
       + \frac{\alpha}{2} \mathrm{KL}_\mathrm{sym}(p_1, p_2)

    with :math:`\mathrm{CE}` :func:`label_smoothed_cross_entropy` and
    :math:`\mathrm{KL}_\mathrm{sym}` :func:`symmetric_kl`, both averaged over the real
    tokens.

    Args:
      logits_a: ``(..., V)`` logits of the first dropout pass.
      logits_b: ``(..., V)`` logits of the second pass (another dropout key).
      labels: ``(...)`` integer targets.
      mask: ``(...)`` boolean, ``True`` at real tokens.
      alpha: weight of the KL term (``>= 0``; Liang et al. use 5 for their translation
        tasks, IWSLT and WMT).
      smoothing: label smoothing of the cross-entropy terms.

    Returns:
      ``(loss, (cross_entropy, kl))``: float32 scalars, ``cross_entropy`` the two passes'
      mean and ``kl`` the symmetric KL.

    Raises:
      ValueError: mismatched shapes, a negative ``alpha``, ``smoothing`` outside
        ``[0, 1)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> a = jnp.log(jnp.array([[0.5, 0.5]])); b = jnp.log(jnp.array([[0.9, 0.1]]))
      >>> loss, (ce, kl) = rdrop_loss(a, b, jnp.array([0]), alpha=1.0)
      >>> round(float(ce), 4), round(float(kl), 4), round(float(loss), 4)
      (0.3993, 0.4394, 0.619)

    References:
      Liang et al. "R-Drop: Regularized Dropout for Neural Networks". NeurIPS 2021.
    """
    alpha = check_number(alpha, "alpha", minimum=0)
    ce = 0.5 * (label_smoothed_cross_entropy(logits_a, labels, mask, smoothing=smoothing)
                + label_smoothed_cross_entropy(logits_b, labels, mask, smoothing=smoothing))
    kl = symmetric_kl(logits_a, logits_b, mask)
    return ce + 0.5 * alpha * kl, (ce, kl)
