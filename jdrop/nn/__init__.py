"""Flax NNX layers and models built on the pure jdrop functions.

Every module takes its randomness as a call argument, ``model(x, key=key)`` (``key=None``:
deterministic inference), and derives one key per layer from it. :func:`pure_apply` turns a
model into ``apply(state, key, x)`` for ``jax.vmap`` over keys and :mod:`jdrop.mc`.
"""

from jdrop.nn.apply import pure_apply as pure_apply
from jdrop.nn.apply import split_key as split_key
from jdrop.nn.cnn import MNIST1DCNN as MNIST1DCNN
from jdrop.nn.cnn import AlexNet as AlexNet
from jdrop.nn.cnn import LeNet as LeNet
from jdrop.nn.cnn import lenet_all as lenet_all
from jdrop.nn.cnn import lenet_ip as lenet_ip
from jdrop.nn.generate import generate as generate
from jdrop.nn.generate import sample_logits as sample_logits
from jdrop.nn.layers import AlphaDropout as AlphaDropout
from jdrop.nn.layers import ConcreteDropout as ConcreteDropout
from jdrop.nn.layers import DropBlock as DropBlock
from jdrop.nn.layers import DropConnectDense as DropConnectDense
from jdrop.nn.layers import Dropout as Dropout
from jdrop.nn.layers import DropPath as DropPath
from jdrop.nn.layers import GaussianDropout as GaussianDropout
from jdrop.nn.layers import SpatialDropout as SpatialDropout
from jdrop.nn.lm_configs import LM_CONFIGS as LM_CONFIGS
from jdrop.nn.lm_configs import get_lm_config as get_lm_config
from jdrop.nn.lm_configs import make_language_model as make_language_model
from jdrop.nn.lm_configs import param_count as param_count
from jdrop.nn.maxnorm import max_norm as max_norm
from jdrop.nn.maxnorm import project_max_norm as project_max_norm
from jdrop.nn.mlp import MLP as MLP
from jdrop.nn.mlp import mnist1d_mlp as mnist1d_mlp
from jdrop.nn.resnet import ResNet as ResNet
from jdrop.nn.resnet import cifar_resnet as cifar_resnet
from jdrop.nn.resnet import resnet18 as resnet18
from jdrop.nn.resnet import resnet20 as resnet20
from jdrop.nn.resnet import resnet32 as resnet32
from jdrop.nn.resnet import resnet50 as resnet50
from jdrop.nn.resnet import resnet56 as resnet56
from jdrop.nn.rnn_cells import GRUCell as GRUCell
from jdrop.nn.rnn_cells import LSTMCell as LSTMCell
from jdrop.nn.rnn_classifier import GRUClassifier as GRUClassifier
from jdrop.nn.rnn_lm import LMConfig as LMConfig
from jdrop.nn.rnn_lm import RNNLanguageModel as RNNLanguageModel
from jdrop.nn.rnn_lm import RNNStack as RNNStack

__all__ = [
    "LM_CONFIGS",
    "MLP",
    "MNIST1DCNN",
    "AlexNet",
    "AlphaDropout",
    "ConcreteDropout",
    "DropBlock",
    "DropConnectDense",
    "DropPath",
    "Dropout",
    "GRUCell",
    "GRUClassifier",
    "GaussianDropout",
    "LMConfig",
    "LSTMCell",
    "LeNet",
    "RNNLanguageModel",
    "RNNStack",
    "ResNet",
    "SpatialDropout",
    "cifar_resnet",
    "generate",
    "get_lm_config",
    "lenet_all",
    "lenet_ip",
    "make_language_model",
    "max_norm",
    "mnist1d_mlp",
    "param_count",
    "project_max_norm",
    "pure_apply",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet50",
    "resnet56",
    "sample_logits",
    "split_key",
]
