"""A small convenience over optax: named optimisers and learning-rate schedules.

The loop takes any ``optax.GradientTransformation``; :func:`make_optimizer` only spells the
common ones by name so that experiment configs stay plain data.

Schedules (``t`` is the step, ``T = total_steps``, ``lr`` the peak rate), after an optional
linear warm-up from 0 over ``warmup_steps`` steps (``t`` then counts from its end):

* ``"constant"``: ``lr``
* ``"cosine"``: ``lr * (1 + cos(pi * t / T)) / 2``
* ``"linear"``: ``lr * (1 - t / T)``
* ``"exponential"``: ``lr * decay_rate ** t``
* ``"inverse_sqrt"``: ``lr * min(s / w, sqrt(w / s))`` with ``s = t + 1`` and
  ``w = warmup_steps`` (Vaswani et al. 2017, eq. 3, with the peak rate ``lr`` in place of
  ``d_model^-0.5 * w^-0.5``): linear warm-up to ``lr`` at ``s = w``, then ``1/sqrt(s)``
  decay; the warm-up is part of the formula (no extra linear warm-up is added)

References:
  Loshchilov, Hutter. "SGDR: Stochastic Gradient Descent with Warm Restarts". ICLR 2017.
  Loshchilov, Hutter. "Decoupled Weight Decay Regularization". ICLR 2019 (AdamW).
  Kingma, Ba. "Adam: A Method for Stochastic Optimization". ICLR 2015.
  Vaswani et al. "Attention Is All You Need". NeurIPS 2017 (inverse square root).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jdrop._validation import check_int, check_number
from jdrop.train._regularizers import Filter, is_kernel, leaf_path

__all__ = ["OPTIMIZERS", "SCHEDULES", "inverse_sqrt_schedule", "make_optimizer",
           "make_schedule"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine", "linear", "exponential", "inverse_sqrt")


def inverse_sqrt_schedule(learning_rate: float, warmup_steps: int) -> optax.Schedule:
    r"""The Transformer's warm-up then inverse-square-root decay, peaking at ``learning_rate``.

    .. math::

       \eta(t) = \eta_\mathrm{max} \min\left(\frac{s}{w}, \sqrt{\frac{w}{s}}\right)

    with :math:`\eta_\mathrm{max}` = ``learning_rate``, :math:`s = t + 1` (optax counts
    updates from 0; the paper's ``step_num`` from 1) and :math:`w` = ``warmup_steps``.
    Vaswani et al.'s :math:`d^{-1/2} \min(s^{-1/2}, s\, w^{-3/2})` (model width :math:`d`)
    is this with :math:`\eta_\mathrm{max} = (d\, w)^{-1/2}`.

    Args:
      learning_rate: the peak rate, reached at update ``w - 1`` (``> 0``).
      warmup_steps: ``w``, the length of the linear warm-up (``>= 1``).

    Returns:
      An ``optax.Schedule``.

    Raises:
      ValueError: a non-positive rate or ``warmup_steps < 1``.

    Examples:
      >>> schedule = inverse_sqrt_schedule(1.0, 4)
      >>> [round(float(schedule(t)), 4) for t in (0, 1, 3, 15)]
      [0.25, 0.5, 1.0, 0.5]

    References:
      Vaswani et al. "Attention Is All You Need". NeurIPS 2017, section 5.3.
    """
    peak = check_number(learning_rate, "learning_rate", positive=True)
    warmup = check_int(warmup_steps, "warmup_steps", 1)

    def schedule(count):
        s = jnp.asarray(count, jnp.float32) + 1.0
        return peak * jnp.minimum(s / warmup, jnp.sqrt(warmup / s))

    return schedule


def make_schedule(
    name: str,
    learning_rate: float,
    *,
    total_steps: int | None = None,
    warmup_steps: int = 0,
    decay_rate: float | None = None,
) -> optax.Schedule:
    r"""A learning-rate schedule by name.

    With peak rate :math:`\eta` = ``learning_rate``, step :math:`t` and :math:`T` =
    ``total_steps``, after an optional linear warm-up from 0 over ``warmup_steps`` steps
    (:math:`t` then counts from its end): ``"constant"`` :math:`\eta`, ``"cosine"``
    :math:`\eta\, (1 + \cos(\pi t / T)) / 2`, ``"linear"`` :math:`\eta\, (1 - t / T)`,
    ``"exponential"`` :math:`\eta\, \rho^t` (:math:`\rho` = ``decay_rate``) and
    ``"inverse_sqrt"`` :func:`inverse_sqrt_schedule` (its warm-up is part of the formula).

    Args:
      name: ``"constant"``, ``"cosine"``, ``"linear"``, ``"exponential"`` or
        ``"inverse_sqrt"`` (:func:`inverse_sqrt_schedule`; needs ``warmup_steps >= 1``).
      learning_rate: the peak learning rate (``> 0``).
      total_steps: the run's length, warm-up included; needed by ``"cosine"`` and
        ``"linear"``.
      warmup_steps: steps of linear warm-up from 0 (``0``: none).
      decay_rate: the per-step factor of ``"exponential"``, in ``(0, 1]``.

    Returns:
      An ``optax.Schedule`` (step -> learning rate).

    Raises:
      ValueError: for an unknown name or a missing or bad argument.

    Examples:
      >>> schedule = make_schedule("linear", 1.0, total_steps=4)
      >>> [float(schedule(t)) for t in range(5)]
      [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got schedule={name!r}")
    learning_rate = check_number(learning_rate, "learning_rate", positive=True)
    warmup_steps = check_int(warmup_steps, "warmup_steps", 0)
    if name == "inverse_sqrt":
        if warmup_steps < 1:
            raise ValueError(
                f"schedule='inverse_sqrt' needs warmup_steps >= 1, got warmup_steps={warmup_steps}"
            )
        return inverse_sqrt_schedule(learning_rate, warmup_steps)
    decay_steps = None
    if name in ("cosine", "linear"):
        if total_steps is None:
            raise ValueError(f"schedule={name!r} needs total_steps, got total_steps=None")
        total_steps = check_int(total_steps, "total_steps", 1)
        if total_steps <= warmup_steps:
            raise ValueError(
                f"total_steps must exceed warmup_steps={warmup_steps}, got "
                f"total_steps={total_steps}"
            )
        decay_steps = total_steps - warmup_steps
    if name == "constant":
        main = optax.constant_schedule(learning_rate)
    elif name == "cosine":
        main = optax.cosine_decay_schedule(learning_rate, decay_steps)
    elif name == "linear":
        main = optax.linear_schedule(learning_rate, 0.0, decay_steps)
    else:
        if decay_rate is None:
            raise ValueError("schedule='exponential' needs decay_rate, got decay_rate=None")
        decay_rate = check_number(decay_rate, "decay_rate", positive=True)
        if decay_rate > 1:
            raise ValueError(f"decay_rate must be in (0, 1], got decay_rate={decay_rate!r}")
        main = optax.exponential_decay(learning_rate, 1, decay_rate)
    if warmup_steps == 0:
        return main
    warmup = optax.linear_schedule(0.0, learning_rate, warmup_steps)
    return optax.join_schedules([warmup, main], [warmup_steps])


def _mask(where: Filter):
    def mask(params):
        return jax.tree_util.tree_map_with_path(lambda p, x: bool(where(leaf_path(p), x)), params)

    return mask


def make_optimizer(
    name: str,
    learning_rate: float,
    *,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    weight_decay_where: Filter = is_kernel,
    schedule: str = "constant",
    total_steps: int | None = None,
    warmup_steps: int = 0,
    decay_rate: float | None = None,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """An optax optimiser by name, with a schedule, weight decay and gradient clipping.

    ``"sgd"``, ``"adam"`` and ``"rmsprop"`` add ``weight_decay * w`` to the gradient
    (coupled, like PyTorch's ``weight_decay``); ``"adamw"`` decays the weights directly
    (decoupled). Weight decay acts on the leaves ``weight_decay_where`` selects (kernels by
    default, like the L1/L2 penalties).

    Args:
      name: ``"sgd"``, ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
      learning_rate: the peak learning rate (``> 0``).
      momentum: momentum for ``"sgd"`` and ``"rmsprop"``, in ``[0, 1)``; for Adam use
        optax directly to change ``b1``.
      nesterov: Nesterov momentum (``"sgd"`` only).
      weight_decay: the decay coefficient (``>= 0``).
      weight_decay_where: filter ``(path, value) -> bool`` for the decayed leaves.
      schedule: a :func:`make_schedule` name.
      total_steps: the run's length (``"cosine"``, ``"linear"``).
      warmup_steps: linear warm-up steps.
      decay_rate: per-step factor of ``"exponential"``.
      clip_norm: clip the gradient's global norm to this value first (``None``: off).

    Returns:
      An ``optax.GradientTransformation``.

    Raises:
      ValueError: for an unknown name or a bad value, naming the argument.

    Examples:
      >>> import jax.numpy as jnp
      >>> tx = make_optimizer("sgd", 0.1, momentum=0.9)
      >>> params = {"kernel": jnp.ones(2)}
      >>> updates, _ = tx.update({"kernel": jnp.ones(2)}, tx.init(params), params)
      >>> updates["kernel"]
      Array([-0.1, -0.1], dtype=float32)
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"name must be one of {OPTIMIZERS}, got name={name!r}")
    momentum = check_number(momentum, "momentum", minimum=0)
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got momentum={momentum!r}")
    if momentum and name not in ("sgd", "rmsprop"):
        raise ValueError(
            f"momentum applies to 'sgd' and 'rmsprop', got momentum={momentum!r} with name={name!r}"
        )
    if nesterov and name != "sgd":
        raise ValueError(f"nesterov applies to 'sgd' only, got nesterov=True with name={name!r}")
    weight_decay = check_number(weight_decay, "weight_decay", minimum=0)
    if not callable(weight_decay_where):
        raise ValueError(
            f"weight_decay_where must be a callable (path, value) -> bool, got "
            f"weight_decay_where={weight_decay_where!r}"
        )
    lr = make_schedule(
        schedule,
        learning_rate,
        total_steps=total_steps,
        warmup_steps=warmup_steps,
        decay_rate=decay_rate,
    )
    parts = []
    if clip_norm is not None:
        clip_norm = check_number(clip_norm, "clip_norm", positive=True)
        parts.append(optax.clip_by_global_norm(clip_norm))
    mask = _mask(weight_decay_where)
    if name == "adamw":
        parts.append(optax.adamw(lr, weight_decay=weight_decay, mask=mask))
        return optax.chain(*parts)
    if weight_decay:
        parts.append(optax.add_decayed_weights(weight_decay, mask=mask))
    if name == "sgd":
        parts.append(optax.sgd(lr, momentum=momentum or None, nesterov=nesterov))
    elif name == "adam":
        parts.append(optax.adam(lr))
    else:
        parts.append(optax.rmsprop(lr, momentum=momentum or None))
    return optax.chain(*parts)
