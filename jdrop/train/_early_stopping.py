"""Early stopping on a validation metric, as a rule plus a small serialisable state.

After each evaluation the metric ``v`` improves on the best value so far when

    v < best - min_delta   (mode "min", e.g. a loss)
    v > best + min_delta   (mode "max", e.g. an accuracy)

and training stops once ``patience`` evaluations in a row did not improve. The state
(:class:`EarlyStoppingState`) is plain data with ``to_dict``/``from_dict``, so a checkpoint
stores it as JSON and a resumed run stops exactly where an uninterrupted one would.

References:
  Prechelt. "Early Stopping — But When?". Neural Networks: Tricks of the Trade, 1998.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["EarlyStopping", "EarlyStoppingState"]


@dataclasses.dataclass(frozen=True)
class EarlyStoppingState:
    """Where early stopping stands; plain data (JSON-serialisable through ``to_dict``).

    Attributes:
      best: the best metric value so far (``None`` before the first evaluation).
      best_step: the training step of that evaluation (``None`` before the first one).
      best_epoch: the epoch of that evaluation (``None`` before the first one).
      bad_evals: evaluations in a row without improvement.
      stop: whether training should stop.
    """

    best: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None
    bad_evals: int = 0
    stop: bool = False

    def to_dict(self) -> dict:
        """The state as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EarlyStoppingState:
        """Rebuilds a state from :meth:`to_dict`'s output."""
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """The early-stopping rule (configuration only; the state is passed in and out).

    Attributes:
      metric: the evaluation metric to watch, e.g. ``"loss"`` or ``"accuracy"``.
      split: the evaluation set it is computed on (a key of the loop's ``eval_sets``).
      mode: ``"min"`` when lower is better, ``"max"`` when higher is better.
      patience: stop after this many evaluations in a row without improvement (``>= 1``).
      min_delta: the smallest change that counts as an improvement (``>= 0``).

    Examples:
      >>> rule = EarlyStopping("loss", patience=1)
      >>> state = rule.init()
      >>> for step, loss in enumerate([1.0, 0.5, 0.6, 0.7]):
      ...     state = rule.update(state, loss, step=step, epoch=step)
      >>> state.best, state.best_step, state.stop
      (0.5, 1, True)
    """

    metric: str
    split: str = "val"
    mode: str = "min"
    patience: int = 5
    min_delta: float = 0.0

    def __post_init__(self):
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"metric must be a non-empty string, got metric={self.metric!r}")
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"split must be a non-empty string, got split={self.split!r}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got mode={self.mode!r}")
        patience = self.patience
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be an int >= 1, got patience={patience!r}")
        delta = self.min_delta
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise ValueError(f"min_delta must be a float >= 0, got min_delta={delta!r}")
        if not math.isfinite(delta) or delta < 0:
            raise ValueError(f"min_delta must be a float >= 0, got min_delta={delta!r}")

    def init(self) -> EarlyStoppingState:
        """The state before the first evaluation."""
        return EarlyStoppingState()

    def improves(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` by more than ``min_delta`` (NaN never does).

        Examples:
          >>> EarlyStopping("acc", mode="max", min_delta=0.1).improves(0.95, 0.9)
          False
        """
        value = float(value)
        if math.isnan(value):
            return False
        if best is None:
            return True
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta

    def update(
        self, state: EarlyStoppingState, value: float, *, step: int, epoch: int
    ) -> EarlyStoppingState:
        """The state after one evaluation that gave ``value``.

        Args:
          state: the state before this evaluation.
          value: the watched metric's value.
          step: the training step of the evaluation (recorded for the best one).
          epoch: the epoch of the evaluation (recorded for the best one).

        Returns:
          The new state; ``stop`` is true once ``bad_evals >= patience``.
        """
        if self.improves(value, state.best):
            return EarlyStoppingState(float(value), int(step), int(epoch), 0, False)
        bad = state.bad_evals + 1
        return dataclasses.replace(state, bad_evals=bad, stop=bad >= self.patience)
