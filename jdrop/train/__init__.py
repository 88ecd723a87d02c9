"""The training loop the experiments share: one loop for classification, regression and LM.

``train(model, tx, loss_fn, batches_fn, config, workdir=...)`` runs a jitted, data-parallel
step (batch sharded over a ``"data"`` mesh axis, state replicated and donated), with L1/L2
penalties, early stopping, JSONL metrics, a tqdm bar and orbax checkpoints from which a
stopped run resumes bit for bit. See :mod:`jdrop.train.loop` and :mod:`jdrop.train.step`.
"""

from jdrop.train._augment import random_crop as random_crop
from jdrop.train._augment import random_flip as random_flip
from jdrop.train._checkpoint import Checkpointer as Checkpointer
from jdrop.train._config import TrainConfig as TrainConfig
from jdrop.train._curriculum import curriculum_rate as curriculum_rate
from jdrop.train._distributed import data_sharding as data_sharding
from jdrop.train._distributed import global_batch as global_batch
from jdrop.train._distributed import make_mesh as make_mesh
from jdrop.train._distributed import replicate as replicate
from jdrop.train._distributed import replicated_sharding as replicated_sharding
from jdrop.train._distributed import shard_rows as shard_rows
from jdrop.train._early_stopping import EarlyStopping as EarlyStopping
from jdrop.train._early_stopping import EarlyStoppingState as EarlyStoppingState
from jdrop.train._loop import TrainResult as TrainResult
from jdrop.train._loop import evaluate as evaluate
from jdrop.train._loop import train as train
from jdrop.train._losses import classification_loss as classification_loss
from jdrop.train._losses import label_smoothed_cross_entropy as label_smoothed_cross_entropy
from jdrop.train._losses import rdrop_loss as rdrop_loss
from jdrop.train._losses import regression_loss as regression_loss
from jdrop.train._losses import symmetric_kl as symmetric_kl
from jdrop.train._maxnorm import max_norm as max_norm
from jdrop.train._maxnorm import project_max_norm as project_max_norm
from jdrop.train._metrics_log import read_metrics as read_metrics
from jdrop.train._optim import inverse_sqrt_schedule as inverse_sqrt_schedule
from jdrop.train._optim import make_optimizer as make_optimizer
from jdrop.train._optim import make_schedule as make_schedule
from jdrop.train._regularizers import all_params as all_params
from jdrop.train._regularizers import is_kernel as is_kernel
from jdrop.train._regularizers import l1_penalty as l1_penalty
from jdrop.train._regularizers import l2_penalty as l2_penalty
from jdrop.train._state import TrainState as TrainState
from jdrop.train._state import create_train_state as create_train_state
from jdrop.train._state import merge_model as merge_model
from jdrop.train._state import split_model as split_model
from jdrop.train._step import make_eval_step as make_eval_step
from jdrop.train._step import make_train_step as make_train_step
from jdrop.train._step import step_key as step_key

__all__ = [
    "Checkpointer",
    "EarlyStopping",
    "EarlyStoppingState",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "all_params",
    "classification_loss",
    "create_train_state",
    "curriculum_rate",
    "data_sharding",
    "evaluate",
    "global_batch",
    "inverse_sqrt_schedule",
    "is_kernel",
    "l1_penalty",
    "l2_penalty",
    "label_smoothed_cross_entropy",
    "make_eval_step",
    "make_mesh",
    "make_optimizer",
    "make_schedule",
    "max_norm",
    "project_max_norm",
    "make_train_step",
    "merge_model",
    "random_crop",
    "random_flip",
    "rdrop_loss",
    "read_metrics",
    "regression_loss",
    "replicate",
    "replicated_sharding",
    "shard_rows",
    "split_model",
    "step_key",
    "symmetric_kl",
    "train",
]
