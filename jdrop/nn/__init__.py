"""Flax NNX layers built on the pure jdrop functions: dropout layers, RNN cells, the scan.

Every layer takes its randomness as a call argument, ``layer(x, key=key)``; inference is
explicit (``deterministic=True`` or ``model.eval()``). :func:`pure_apply` turns a model into
``apply(state, key, x)`` for ``jax.vmap`` over keys and :mod:`jdrop.mc`.
"""

from jdrop.nn._apply import pure_apply as pure_apply
from jdrop.nn._apply import split_key as split_key
from jdrop.nn._cells import GRUCell as GRUCell
from jdrop.nn._cells import LSTMCell as LSTMCell
from jdrop.nn._layers import AlphaDropout as AlphaDropout
from jdrop.nn._layers import ConcreteDropout as ConcreteDropout
from jdrop.nn._layers import DropBlock as DropBlock
from jdrop.nn._layers import DropConnectDense as DropConnectDense
from jdrop.nn._layers import Dropout as Dropout
from jdrop.nn._layers import DropPath as DropPath
from jdrop.nn._layers import GaussianDropout as GaussianDropout
from jdrop.nn._layers import SpatialDropout as SpatialDropout

__all__ = [
    "AlphaDropout",
    "ConcreteDropout",
    "DropBlock",
    "DropConnectDense",
    "DropPath",
    "Dropout",
    "GRUCell",
    "GaussianDropout",
    "LSTMCell",
    "SpatialDropout",
    "pure_apply",
    "split_key",
]
