"""jdrop: dropout done right in JAX.

Pure functions that take an explicit PRNG key first, then the data, then the drop rate::

    y = jdrop.dropout(key, x, 0.1)

Monte-Carlo dropout lives in :mod:`jdrop.mc`, uncertainty metrics in
:mod:`jdrop.uncertainty`, Flax NNX layers and models in :mod:`jdrop.nn`.
"""

from jdrop._alpha import alpha_dropout as alpha_dropout
from jdrop._alpha import feature_alpha_dropout as feature_alpha_dropout
from jdrop._concrete import concrete_dropout as concrete_dropout
from jdrop._concrete import concrete_dropout_regularizer as concrete_dropout_regularizer
from jdrop._dropblock import dropblock as dropblock
from jdrop._dropout import apply_mask as apply_mask
from jdrop._dropout import drop_path as drop_path
from jdrop._dropout import dropconnect as dropconnect
from jdrop._dropout import dropout as dropout
from jdrop._dropout import spatial_dropout as spatial_dropout
from jdrop._dropout import weight_scale as weight_scale
from jdrop._gaussian import gaussian_dropout as gaussian_dropout
from jdrop._keys import as_key as as_key
from jdrop._keys import split_key as split_key
from jdrop._masks import keep_mask as keep_mask
from jdrop._masks import normal as normal
from jdrop._masks import random_bits as random_bits
from jdrop._masks import shard_block as shard_block
from jdrop._masks import uniform as uniform
from jdrop._recurrent import embedding_dropout as embedding_dropout
from jdrop._recurrent import locked_dropout as locked_dropout
from jdrop._recurrent import weight_drop as weight_drop
from jdrop._recurrent import zoneout as zoneout
from jdrop._specaugment import spec_augment as spec_augment
from jdrop._validation import checked as checked

__version__ = "0.1.0"

# Subpackages, bound on first attribute access (PEP 562) so that ``import jdrop`` stays as
# cheap as the ops: ``import jdrop; jdrop.mc.sample(...)`` works without importing Flax.
_SUBPACKAGES = (
    "attention",
    "audio", "data", "linen", "mc", "models", "nn", "plots", "report", "train", "uncertainty",
)


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        import importlib

        module = importlib.import_module(f"jdrop.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'jdrop' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBPACKAGES))

__all__ = [
    "alpha_dropout",
    "apply_mask",
    "as_key",
    "checked",
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
    "shard_block",
    "spatial_dropout",
    "spec_augment",
    "split_key",
    "uniform",
    "weight_drop",
    "weight_scale",
    "zoneout",
]
