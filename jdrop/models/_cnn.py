"""Convolutional image and signal classifiers with configurable dropout (channels-last).

* :class:`LeNet`: the Caffe LeNet-5 of Gal & Ghahramani's Bayesian CNN ("LeNet-ip": dropout
  on the fully connected layer only; "LeNet-all": after every layer).
* :class:`AlexNet`: Krizhevsky et al.'s network (dropout 0.5 in the first two fully
  connected layers), in a 224x224 ImageNet and a 32x32 CIFAR variant.
* :class:`MNIST1DCNN`: the MNIST-1D convolutional baseline, widened and regularised at will.

Every model is called as ``model(x, key=key)`` and returns logits; inference is
``model(x, deterministic=True)`` or ``model.eval()`` (training without a key raises), and
each dropout position draws from its own key split from ``key``
(:func:`jdrop.nn.split_key`). Dropout rates of 0 remove the layer.

References:
  LeCun, Bottou, Bengio, Haffner. "Gradient-based learning applied to document
  recognition". Proc. IEEE 1998.
  Gal, Ghahramani. "Bayesian Convolutional Neural Networks with Bernoulli Approximate
  Variational Inference". ICLR workshop 2016 (arXiv:1506.02158).
  Krizhevsky, Sutskever, Hinton. "ImageNet Classification with Deep Convolutional Neural
  Networks". NeurIPS 2012.
  Greydanus, Kobak. "Scaling Down Deep Learning with MNIST-1D". ICML 2024.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from flax import nnx

from jdrop.models._common import call_optional, optional_dropout, per_layer
from jdrop.nn._mode import StochasticModule, layer_keys

__all__ = ["AlexNet", "LeNet", "MNIST1DCNN", "lenet_all", "lenet_ip"]


def _pair(size, name: str) -> tuple[int, int]:
    pair = per_layer(size, 2, name)
    if not all(isinstance(s, int) and s > 0 for s in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {name}={size!r}")
    return pair


def _conv_size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _pool_size(size: int, window: int, stride: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // stride)
    return (size - window) // stride + 1


class LeNet(StochasticModule):
    """LeNet-5 as in Caffe: conv 20 5x5 - pool - conv 50 5x5 - pool - FC 500 - FC 10.

    Caffe's order, followed here: ``conv -> dropout(conv_rate) -> max-pool 2x2`` twice (no
    nonlinearity after the convolutions unless ``conv_activation`` is given), then
    ``dense 500 -> ReLU -> dropout(fc_rate) -> dense``. "LeNet-ip" is ``conv_rate=0``
    (:func:`lenet_ip`), "LeNet-all" uses the same rate everywhere (:func:`lenet_all`).

    Args:
      num_classes: the number of logits.
      image_size: input height and width (an int or a pair); 28 for MNIST, 32 for CIFAR.
      in_channels: input channels.
      features: the two convolutions' channel counts.
      hidden: the hidden fully connected layer's size.
      conv_rate: drop probability after each convolution (a float or one per convolution).
      fc_rate: drop probability after the hidden fully connected layer.
      conv_dropout: ``"standard"`` (elementwise, as in the paper) or ``"spatial"``.
      conv_activation: nonlinearity after each convolution, ``None`` for Caffe's LeNet.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.
      rngs: ``nnx.Rngs`` for parameter initialisation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = LeNet(rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 28, 28, 1)), key=jax.random.key(1)).shape
      (2, 10)
      >>> sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
      431080

    References:
      Gal, Ghahramani. "Bayesian Convolutional Neural Networks with Bernoulli Approximate
      Variational Inference". 2016.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        image_size: int | Sequence[int] = 28,
        in_channels: int = 1,
        features: Sequence[int] = (20, 50),
        hidden: int = 500,
        conv_rate: float | Sequence[float] = 0.0,
        fc_rate: float = 0.5,
        conv_dropout: str = "standard",
        conv_activation: Callable[[jax.Array], jax.Array] | None = None,
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.deterministic = deterministic
        height, width = _pair(image_size, "image_size")
        features = tuple(per_layer(features, 2, "features"))
        rates = per_layer(conv_rate, 2, "conv_rate")
        channels = (in_channels, *features)
        self.convs = nnx.List([
            nnx.Conv(a, b, (5, 5), padding="VALID", rngs=rngs)
            for a, b in zip(channels[:-1], channels[1:], strict=True)
        ])
        self.conv_dropouts = nnx.List(
            [optional_dropout(r, conv_dropout, "conv_dropout") for r in rates]
        )
        for _ in range(2):
            height, width = (height - 4) // 2, (width - 4) // 2
        if height < 1 or width < 1:
            raise ValueError(f"image_size={image_size!r} is too small for LeNet (at least 16)")
        self.fc = nnx.Linear(height * width * features[-1], hidden, rngs=rngs)
        self.fc_dropout = optional_dropout(fc_rate)
        self.head = nnx.Linear(hidden, num_classes, rngs=rngs)
        self.conv_activation = conv_activation

    def __call__(self, x, *, key=None, deterministic=None):
        """Logits ``(N, num_classes)`` for images ``(N, H, W, C)``."""
        keys, det = layer_keys(self, key, deterministic, 3)
        h = x
        for conv, drop, k in zip(self.convs, self.conv_dropouts, keys[:2], strict=True):
            h = conv(h)
            if self.conv_activation is not None:
                h = self.conv_activation(h)
            h = nnx.max_pool(call_optional(drop, h, k, det), (2, 2), (2, 2))
        h = nnx.relu(self.fc(h.reshape(h.shape[0], -1)))
        return self.head(call_optional(self.fc_dropout, h, keys[2], det))


def lenet_ip(rate: float = 0.5, **kwargs) -> LeNet:
    """"LeNet-ip": dropout ``rate`` after the hidden fully connected layer only.

    Args:
      rate: the drop probability.
      **kwargs: other :class:`LeNet` arguments (``rngs`` is required).

    Returns:
      A :class:`LeNet`.

    Examples:
      >>> from flax import nnx
      >>> lenet_ip(rngs=nnx.Rngs(0)).conv_dropouts[0] is None
      True
    """
    return LeNet(conv_rate=0.0, fc_rate=rate, **kwargs)


def lenet_all(rate: float = 0.5, **kwargs) -> LeNet:
    """"LeNet-all": dropout ``rate`` after both convolutions and the hidden dense layer.

    Args and Returns: as :func:`lenet_ip`.

    Examples:
      >>> from flax import nnx
      >>> lenet_all(rngs=nnx.Rngs(0)).conv_dropouts[1].rate
      0.5
    """
    return LeNet(conv_rate=rate, fc_rate=rate, **kwargs)


# (features, kernel, stride, padding) per convolution; max-pool 3x3/2 after layers 1, 2, 5.
_ALEXNET = {
    "imagenet": {
        "convs": ((96, 11, 4, 2), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1),
                  (256, 3, 1, 1)),
        "pool_padding": "VALID",
        "image_size": 224,
        "fc_features": 4096,
    },
    "cifar": {
        "convs": ((64, 5, 1, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1),
                  (256, 3, 1, 1)),
        "pool_padding": "SAME",
        "image_size": 32,
        "fc_features": 1024,
    },
}
_POOL_AFTER = (0, 1, 4)


class AlexNet(StochasticModule):
    """AlexNet: five convolutions, three max-pools, three dense layers, dropout in two.

    ``variant="imagenet"``: 224x224 inputs, conv 96 11x11/4 - pool - 256 5x5 - pool -
    384 - 384 - 256 3x3 - pool - FC 4096 - FC 4096 - FC 1000 (62.4M parameters; one tower,
    no local response normalisation). ``variant="cifar"``: 32x32 inputs, conv 64 5x5 -
    pool - 192 5x5 - pool - 384 - 256 - 256 - pool (3x3/2, "SAME") - FC 1024 - FC 1024 -
    FC 10. As in the paper, ``fc_rate`` (0.5) drops the outputs of the first two dense
    layers; ``conv_rate`` optionally drops after every convolution.

    Args:
      num_classes: the number of logits (default 1000 for ImageNet, 10 for CIFAR).
      variant: ``"imagenet"`` or ``"cifar"``.
      image_size: input size (default 224 or 32).
      in_channels: input channels.
      width: multiplier of every convolution's channel count (``< 1`` for small tests).
      fc_features: the two hidden dense layers' size (default 4096 or 1024).
      fc_rate: drop probability after each hidden dense layer.
      conv_rate: drop probability after each convolution's ReLU (a float or five).
      conv_dropout: ``"standard"`` or ``"spatial"``.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.
      rngs: ``nnx.Rngs`` for parameter initialisation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = AlexNet(variant="cifar", width=0.25, fc_features=64, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 32, 32, 3)), key=jax.random.key(1)).shape
      (2, 10)

    References:
      Krizhevsky, Sutskever, Hinton. "ImageNet Classification with Deep Convolutional
      Neural Networks". NeurIPS 2012.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        *,
        variant: str = "imagenet",
        image_size: int | Sequence[int] | None = None,
        in_channels: int = 3,
        width: float = 1.0,
        fc_features: int | None = None,
        fc_rate: float = 0.5,
        conv_rate: float | Sequence[float] = 0.0,
        conv_dropout: str = "standard",
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.deterministic = deterministic
        if variant not in _ALEXNET:
            raise ValueError(f"variant must be one of {tuple(_ALEXNET)}, got variant={variant!r}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got width={width!r}")
        spec = _ALEXNET[variant]
        num_classes = num_classes or (1000 if variant == "imagenet" else 10)
        fc_features = fc_features or spec["fc_features"]
        height, wide = _pair(image_size or spec["image_size"], "image_size")
        rates = per_layer(conv_rate, len(spec["convs"]), "conv_rate")
        self.pool_padding = spec["pool_padding"]
        convs, channels = [], in_channels
        for index, (features, kernel, stride, pad) in enumerate(spec["convs"]):
            features = max(1, round(features * width))
            convs.append(nnx.Conv(channels, features, (kernel, kernel), (stride, stride),
                                  padding=((pad, pad), (pad, pad)), rngs=rngs))
            height = _conv_size(height, kernel, stride, pad)
            wide = _conv_size(wide, kernel, stride, pad)
            if index in _POOL_AFTER:
                height = _pool_size(height, 3, 2, self.pool_padding)
                wide = _pool_size(wide, 3, 2, self.pool_padding)
            channels = features
        if height < 1 or wide < 1:
            raise ValueError(f"image_size={image_size!r} is too small for AlexNet ({variant})")
        self.convs = nnx.List(convs)
        self.conv_dropouts = nnx.List(
            [optional_dropout(r, conv_dropout, "conv_dropout") for r in rates]
        )
        self.fc1 = nnx.Linear(height * wide * channels, fc_features, rngs=rngs)
        self.fc2 = nnx.Linear(fc_features, fc_features, rngs=rngs)
        self.fc_dropouts = nnx.List([optional_dropout(fc_rate), optional_dropout(fc_rate)])
        self.head = nnx.Linear(fc_features, num_classes, rngs=rngs)

    def __call__(self, x, *, key=None, deterministic=None):
        """Logits ``(N, num_classes)`` for images ``(N, H, W, C)``."""
        keys, det = layer_keys(self, key, deterministic, len(self.convs) + 2)
        h = x
        for index, (conv, drop) in enumerate(zip(self.convs, self.conv_dropouts, strict=True)):
            h = call_optional(drop, nnx.relu(conv(h)), keys[index], det)
            if index in _POOL_AFTER:
                h = nnx.max_pool(h, (3, 3), (2, 2), padding=self.pool_padding)
        h = h.reshape(h.shape[0], -1)
        for dense, drop, k in zip((self.fc1, self.fc2), self.fc_dropouts, keys[-2:],
                                  strict=True):
            h = call_optional(drop, nnx.relu(dense(h)), k, det)
        return self.head(h)


class MNIST1DCNN(StochasticModule):
    """The MNIST-1D convolutional baseline with configurable width and dropout.

    Defaults reproduce Greydanus' ``ConvBase`` (5,210 parameters): three 1-D convolutions
    of 25 channels, kernels 5, 3, 3, stride 2, padding 1, ReLU, then one dense layer on the
    flattened features (40 -> 19 -> 10 -> 5 steps). Dropout: ``conv_rate`` after each
    convolution's ReLU (``"standard"`` or ``"spatial"``, which drops whole channels) and
    ``head_rate`` before the classifier.

    Args:
      num_classes: the number of logits.
      length: the signal length (40 for MNIST-1D).
      in_channels: input channels; ``(N, length)`` inputs get a channel axis of 1.
      channels: channels per convolution (an int, or one per convolution).
      kernel_sizes: the kernel sizes; their number sets the depth.
      strides: the strides (an int or one per convolution).
      padding: symmetric padding (an int or one per convolution).
      conv_rate: drop probability after each convolution (a float or one per convolution).
      conv_dropout: ``"standard"`` or ``"spatial"``.
      head_rate: drop probability on the flattened features before the classifier.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.
      rngs: ``nnx.Rngs`` for parameter initialisation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = MNIST1DCNN(rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 40)), key=jax.random.key(1)).shape
      (2, 10)
      >>> sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
      5210

    References:
      Greydanus, Kobak. "Scaling Down Deep Learning with MNIST-1D". ICML 2024.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        length: int = 40,
        in_channels: int = 1,
        channels: int | Sequence[int] = 25,
        kernel_sizes: Sequence[int] = (5, 3, 3),
        strides: int | Sequence[int] = 2,
        padding: int | Sequence[int] = 1,
        conv_rate: float | Sequence[float] = 0.0,
        conv_dropout: str = "standard",
        head_rate: float = 0.0,
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.deterministic = deterministic
        depth = len(kernel_sizes)
        if depth < 1:
            raise ValueError(f"kernel_sizes must be non-empty, got kernel_sizes={kernel_sizes!r}")
        widths = per_layer(channels, depth, "channels")
        strides = per_layer(strides, depth, "strides")
        pads = per_layer(padding, depth, "padding")
        rates = per_layer(conv_rate, depth, "conv_rate")
        convs, size, previous = [], length, in_channels
        for features, kernel, stride, pad in zip(widths, kernel_sizes, strides, pads,
                                                 strict=True):
            convs.append(nnx.Conv(previous, features, (kernel,), (stride,),
                                  padding=((pad, pad),), rngs=rngs))
            size, previous = _conv_size(size, kernel, stride, pad), features
        if size < 1:
            raise ValueError(f"length={length} is too short for kernel_sizes={kernel_sizes!r}")
        self.in_channels = in_channels
        self.convs = nnx.List(convs)
        self.conv_dropouts = nnx.List(
            [optional_dropout(r, conv_dropout, "conv_dropout") for r in rates]
        )
        self.head_dropout = optional_dropout(head_rate)
        self.head = nnx.Linear(size * previous, num_classes, rngs=rngs)

    def __call__(self, x, *, key=None, deterministic=None):
        """Logits ``(N, num_classes)`` for signals ``(N, length)`` or ``(N, length, C)``."""
        if x.ndim == 2 and self.in_channels == 1:
            x = x[..., None]
        keys, det = layer_keys(self, key, deterministic, len(self.convs) + 1)
        h = x
        for conv, drop, k in zip(self.convs, self.conv_dropouts, keys[:-1], strict=True):
            h = call_optional(drop, nnx.relu(conv(h)), k, det)
        h = call_optional(self.head_dropout, h.reshape(h.shape[0], -1), keys[-1], det)
        return self.head(h)
