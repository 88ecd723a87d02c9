"""Curriculum dropout: a drop probability that rises from 0 during training (Morerio et al.).

Morerio et al. (2017) start training without dropout and raise the drop rate towards its
final value, so that early training (when features are still poor) is not disturbed and
the regularisation grows as the model starts to over-fit:

    rate(t) = rate_final * (1 - exp(-gamma * t))

(their retain probability ``theta(t) = (1 - theta_bar) exp(-gamma t) + theta_bar`` with
``theta_bar = 1 - rate_final``). jdrop's layers store their rate as a Python float, so a
training loop changes it between compiled programs: :func:`curriculum_rate` with
``quantum`` rounds the rate down to a grid (e.g. 0.05), which bounds the number of
distinct programs (``rate_final / quantum + 1``) while following the curve.

References:
  Morerio, Cavazza, Volpi, Vidal, Murino. "Curriculum Dropout". ICCV 2017.
"""

from __future__ import annotations

import math

from jdrop._validation import check_int, check_number, check_rate

__all__ = ["curriculum_rate"]


def curriculum_rate(step: int, final_rate: float, gamma: float, *,
                    quantum: float | None = None) -> float:
    """The curriculum-dropout rate at step ``step``: ``final_rate * (1 - exp(-gamma * step))``.

    Args:
      step: the training step (or epoch; ``gamma``'s unit), ``>= 0``.
      final_rate: the asymptotic drop probability, in ``[0, 1)``.
      gamma: the ramp's speed (``> 0``); the rate is within 5% of ``final_rate`` after
        ``3 / gamma`` steps. Morerio et al. pick ``gamma`` so that the ramp covers a
        small fraction of training (e.g. ``10 / total_steps``).
      quantum: round the rate down to a multiple of this (``None``: exact), so a loop
        that recompiles per rate compiles at most ``final_rate / quantum + 1`` times;
        the last step of the grid below ``final_rate`` rounds up to ``final_rate`` once
        the curve is within ``quantum / 2`` of it.

    Returns:
      The rate, a Python float in ``[0, final_rate]``.

    Raises:
      ValueError: a negative step, a rate outside ``[0, 1)``, a non-positive ``gamma`` or
        ``quantum``.

    Examples:
      >>> round(curriculum_rate(0, 0.3, 0.1), 4), round(curriculum_rate(10, 0.3, 0.1), 4)
      (0.0, 0.1896)
      >>> curriculum_rate(10, 0.3, 0.1, quantum=0.05), curriculum_rate(100, 0.3, 0.1, quantum=0.05)
      (0.15, 0.3)

    References:
      Morerio et al. "Curriculum Dropout". ICCV 2017, eq. 5.
    """
    step = check_int(step, "step", 0)
    final_rate = check_rate(final_rate, "final_rate", allow_one=False)
    gamma = check_number(gamma, "gamma", positive=True)
    rate = final_rate * (1.0 - math.exp(-gamma * step))
    if quantum is None:
        return rate
    quantum = check_number(quantum, "quantum", positive=True)
    if final_rate - rate <= quantum / 2:
        return final_rate
    return round(math.floor(rate / quantum + 1e-9) * quantum, 10)
