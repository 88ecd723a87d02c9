"""Flax NNX layers built on the pure jdrop functions: dropout layers, RNN cells, the scan.

Every layer is called as ``layer(x, *, key=None, deterministic=None)``: training (the
default) needs a key, and a missing key is a ``ValueError``; inference is explicit
(``deterministic=True``, or ``model.eval()`` / ``model.train()`` as in Flax NNX).
:class:`Dropout` is a drop-in for ``flax.nnx.Dropout`` (it also takes ``rngs``).
:class:`RNNStack` is a multi-layer LSTM/GRU layer with every recurrent dropout.
:func:`pure_apply` turns a model into ``apply(state, key, x)`` for ``jax.vmap`` over keys
and :mod:`jdrop.mc`; :func:`split_key` is the one way to derive per-layer keys.
"""

from jdrop._keys import split_key as split_key
from jdrop.nn._apply import pure_apply as pure_apply
from jdrop.nn._attention import FeedForward as FeedForward
from jdrop.nn._attention import MultiHeadAttention as MultiHeadAttention
from jdrop.nn._attention import TransformerBlock as TransformerBlock
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
from jdrop.nn._rnn_stack import RNNStack as RNNStack
from jdrop.nn._scan import lstm_layer as lstm_layer
from jdrop.nn._scan import scan_cell as scan_cell

__all__ = [
    "AlphaDropout",
    "ConcreteDropout",
    "DropBlock",
    "DropConnectDense",
    "DropPath",
    "Dropout",
    "FeedForward",
    "GRUCell",
    "GaussianDropout",
    "LSTMCell",
    "MultiHeadAttention",
    "RNNStack",
    "SpatialDropout",
    "TransformerBlock",
    "lstm_layer",
    "pure_apply",
    "scan_cell",
    "split_key",
]
