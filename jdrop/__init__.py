"""jdrop: dropout done right in JAX.

Pure functions that take an explicit PRNG key first, then the data, then the drop rate::

    y = jdrop.dropout(key, x, 0.1)

Monte-Carlo dropout lives in :mod:`jdrop.mc`, uncertainty metrics in
:mod:`jdrop.uncertainty`, Flax NNX layers and models in :mod:`jdrop.nn`.
"""

from jdrop.alpha import alpha_dropout as alpha_dropout
from jdrop.alpha import feature_alpha_dropout as feature_alpha_dropout
from jdrop.concrete import concrete_dropout as concrete_dropout
from jdrop.concrete import concrete_dropout_regularizer as concrete_dropout_regularizer
from jdrop.dropblock import dropblock as dropblock
from jdrop.dropout import apply_mask as apply_mask
from jdrop.dropout import drop_path as drop_path
from jdrop.dropout import dropconnect as dropconnect
from jdrop.dropout import dropout as dropout
from jdrop.dropout import spatial_dropout as spatial_dropout
from jdrop.dropout import weight_scale as weight_scale
from jdrop.gaussian import gaussian_dropout as gaussian_dropout
from jdrop.masks import as_key as as_key
from jdrop.masks import keep_mask as keep_mask
from jdrop.masks import normal as normal
from jdrop.masks import random_bits as random_bits
from jdrop.masks import uniform as uniform
from jdrop.recurrent import embedding_dropout as embedding_dropout
from jdrop.recurrent import locked_dropout as locked_dropout
from jdrop.recurrent import weight_drop as weight_drop
from jdrop.recurrent import zoneout as zoneout

__version__ = "0.1.0"

__all__ = [
    "alpha_dropout",
    "apply_mask",
    "as_key",
    "concrete_dropout",
    "concrete_dropout_regularizer",
    "drop_path",
    "dropblock",
    "dropconnect",
    "dropout",
    "embedding_dropout",
    "feature_alpha_dropout",
    "gaussian_dropout",
    "keep_mask",
    "locked_dropout",
    "normal",
    "random_bits",
    "spatial_dropout",
    "uniform",
    "weight_drop",
    "weight_scale",
    "zoneout",
]
