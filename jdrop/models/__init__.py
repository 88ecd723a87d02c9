"""The model zoo: MLPs, LeNet, AlexNet, ResNets, the MNIST-1D CNN, RNN classifiers and
language models, and the paper configurations, all built from :mod:`jdrop.nn` layers.

Every model is called as ``model(x, *, key=None, deterministic=None)``: training (the
default) needs a key and raises without one; inference is ``deterministic=True`` or
``model.eval()``.
"""

from jdrop.models._acoustic import AcousticCNN as AcousticCNN
from jdrop.models._acoustic import AcousticRNN as AcousticRNN
from jdrop.models._cnn import MNIST1DCNN as MNIST1DCNN
from jdrop.models._cnn import AlexNet as AlexNet
from jdrop.models._cnn import LeNet as LeNet
from jdrop.models._cnn import lenet_all as lenet_all
from jdrop.models._cnn import lenet_ip as lenet_ip
from jdrop.models._generate import generate as generate
from jdrop.models._generate import sample_logits as sample_logits
from jdrop.models._lm_configs import LM_CONFIGS as LM_CONFIGS
from jdrop.models._lm_configs import get_lm_config as get_lm_config
from jdrop.models._lm_configs import make_language_model as make_language_model
from jdrop.models._lm_configs import param_count as param_count
from jdrop.models._mlp import MLP as MLP
from jdrop.models._mlp import mnist1d_mlp as mnist1d_mlp
from jdrop.models._resnet import ResNet as ResNet
from jdrop.models._resnet import cifar_resnet as cifar_resnet
from jdrop.models._resnet import resnet18 as resnet18
from jdrop.models._resnet import resnet20 as resnet20
from jdrop.models._resnet import resnet32 as resnet32
from jdrop.models._resnet import resnet50 as resnet50
from jdrop.models._resnet import resnet56 as resnet56
from jdrop.models._rnn_classifier import GRUClassifier as GRUClassifier
from jdrop.models._rnn_lm import LMConfig as LMConfig
from jdrop.models._rnn_lm import RNNLanguageModel as RNNLanguageModel
from jdrop.models._seq2seq import TransformerSeq2Seq as TransformerSeq2Seq
from jdrop.models._seq2seq import sinusoidal_positions as sinusoidal_positions
from jdrop.models._transformer_lm import TransformerLM as TransformerLM
from jdrop.models._transformer_lm import TransformerLMConfig as TransformerLMConfig
from jdrop.models._translate import beam_search as beam_search
from jdrop.models._translate import greedy_decode as greedy_decode

__all__ = [
    "AcousticCNN",
    "AcousticRNN",
    "AlexNet",
    "GRUClassifier",
    "LMConfig",
    "LM_CONFIGS",
    "LeNet",
    "MLP",
    "MNIST1DCNN",
    "RNNLanguageModel",
    "ResNet",
    "TransformerLM",
    "TransformerLMConfig",
    "TransformerSeq2Seq",
    "beam_search",
    "cifar_resnet",
    "generate",
    "get_lm_config",
    "greedy_decode",
    "lenet_all",
    "lenet_ip",
    "make_language_model",
    "mnist1d_mlp",
    "param_count",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet50",
    "resnet56",
    "sample_logits",
    "sinusoidal_positions",
]
