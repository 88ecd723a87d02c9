"""The training loop's settings: plain data with a comment on every field."""

from __future__ import annotations

import dataclasses

from jdrop._validation import check_int, check_number
from jdrop.train._early_stopping import EarlyStopping

__all__ = ["TrainConfig"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What :func:`jdrop.train.train` does, apart from the model, data and loss.

    Every field is checked when the config is built; a bad value is a ``ValueError`` that
    names the field and the value.

    Examples:
      >>> TrainConfig(num_epochs=3, l2=1e-4).num_epochs
      3
      >>> TrainConfig(num_epochs=0)
      Traceback (most recent call last):
      ...
      ValueError: num_epochs must be >= 1, got num_epochs=0
    """

    # Passes over the training data (epochs are counted from 0).
    num_epochs: int = 1
    # Seeds the key stream of the training steps (dropout masks, augmentation):
    # step t uses fold_in(jax.random.key(seed), t). Model initialisation is the caller's.
    seed: int = 0
    # Weight of the L1 penalty scale * sum|w| added to the loss (0: off).
    l1: float = 0.0
    # Weight of the L2 penalty scale / 2 * sum w**2 added to the loss (0: off).
    l2: float = 0.0
    # Log the training metrics (their mean since the last log) every this many steps;
    # the last step of every epoch is always logged.
    log_every: int = 50
    # Evaluate on every eval set every this many epochs; the last epoch always is.
    eval_every: int = 1
    # Save a checkpoint every this many steps (None: only at the end); needs a workdir.
    checkpoint_every: int | None = None
    # How many checkpoints the workdir keeps (the oldest are deleted).
    max_to_keep: int = 2
    # Stop (and checkpoint) once the global step reaches this value, even in the middle of
    # an epoch; None: run all epochs. A later call with a larger value resumes.
    max_steps: int | None = None
    # Early stopping on an evaluation metric (None: off).
    early_stopping: EarlyStopping | None = None
    # Return the model of the best evaluation (needs early_stopping) instead of the last.
    restore_best: bool = False
    # Show a tqdm progress bar with the running metrics (process 0 only).
    progress: bool = True

    def __post_init__(self):
        check_int(self.num_epochs, "num_epochs", 1)
        check_int(self.seed, "seed", 0)
        check_number(self.l1, "l1", minimum=0)
        check_number(self.l2, "l2", minimum=0)
        check_int(self.log_every, "log_every", 1)
        check_int(self.eval_every, "eval_every", 1)
        check_int(self.checkpoint_every, "checkpoint_every", 1, optional=True)
        check_int(self.max_to_keep, "max_to_keep", 1)
        check_int(self.max_steps, "max_steps", 1, optional=True)
        if self.early_stopping is not None and not isinstance(self.early_stopping, EarlyStopping):
            raise ValueError(
                "early_stopping must be a jdrop.train.EarlyStopping or None, got "
                f"early_stopping={self.early_stopping!r}"
            )
        for name in ("restore_best", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {name}={getattr(self, name)!r}")
        if self.restore_best and self.early_stopping is None:
            raise ValueError(
                "restore_best=True needs early_stopping (it names the metric that decides "
                "the best evaluation), got early_stopping=None"
            )
