"""Residual networks with every kind of dropout a ResNet is trained with (channels-last).

CIFAR ResNet-20/32/56 (He et al. 2016, section 4.2: a 3x3 stem, three stages of ``n``
basic blocks with 16/32/64 channels, ``depth = 6n + 2``) use **option A** shortcuts:
identity, with stride-2 subsampling and zero-padded channels where the shape changes
(no parameters: ResNet-20 has 0.27M). ImageNet ResNet-18/50 use **option B** projection
shortcuts (1x1 convolution + BatchNorm where the shape changes; stride on the 3x3
convolution of a bottleneck, "v1.5") and match torchvision's parameter counts (11.69M and
25.56M).

Dropout options, all off by default and free to combine:

* ``head_rate``: dropout on the pooled features before the classifier;
* ``block_rate``: dropout between the convolutions of each residual branch (after each
  inner ``BN -> ReLU``, as in wide ResNets), of kind ``block_dropout``: ``"standard"``,
  ``"spatial"`` (whole channels) or ``"dropblock"`` (``block_size`` regions, clipped to the
  feature map), in the stages listed in ``block_stages`` (all by default; DropBlock's
  paper uses the last two);
* ``drop_path_rate``: stochastic depth, the residual branch of block ``l`` (of ``L``)
  dropped per example with probability ``drop_path_rate * l / L`` (Huang et al.'s linear
  decay; inverted scaling, so inference uses the network as it is).

BatchNorm and dropout are controlled separately: ``model(x, key=key, train=True)`` trains
(batch statistics, which also update the running averages in the model's
``nnx.BatchStat`` state), ``train=False`` uses the running averages; dropout follows
``deterministic`` (the call argument, else the attribute that ``model.eval()`` /
``model.train()`` set) and needs ``key`` while training. Monte-Carlo dropout inference is
``train=False`` with a key; plain inference is ``model(x, deterministic=True)``. In a pure
step use :func:`jdrop.nn.pure_apply` with ``return_state=True`` to get the updated
running averages back.

References:
  He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition". CVPR 2016.
  Zagoruyko, Komodakis. "Wide Residual Networks". BMVC 2016.
  Huang, Sun, Liu, Sedra, Weinberger. "Deep Networks with Stochastic Depth". ECCV 2016.
  Ghiasi, Lin, Le. "DropBlock: A regularization method for convolutional networks".
  NeurIPS 2018.
  Tompson, Goroshin, Jain, LeCun, Bregler. "Efficient Object Localization Using
  Convolutional Networks". CVPR 2015.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from flax import nnx

from jdrop._dropblock import dropblock
from jdrop._keys import split_key
from jdrop._validation import check_choice
from jdrop.models._common import call_optional, optional_dropout
from jdrop.nn._layers import DropPath
from jdrop.nn._mode import StochasticModule, layer_keys

__all__ = [
    "ResNet",
    "cifar_resnet",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet50",
    "resnet56",
]

BLOCK_DROPOUTS = ("standard", "spatial", "dropblock")
_CONV_INIT = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


class _FeatureDropout(nnx.Module):
    """Standard, spatial or DropBlock dropout on ``(N, H, W, C)`` features."""

    def __init__(self, rate: float, kind: str, block_size: int):
        self.kind = kind
        self.block_size = block_size
        self.rate = rate
        self.layer = None if kind == "dropblock" else optional_dropout(rate, kind)

    def __call__(self, x, *, key, deterministic: bool):
        if self.kind != "dropblock":
            return call_optional(self.layer, x, key, deterministic)
        size = min(self.block_size, *x.shape[1:-1])
        return dropblock(key, x, self.rate, block_size=size, deterministic=deterministic)


def _inner_dropout(rate: float, kind: str, block_size: int) -> _FeatureDropout | None:
    return _FeatureDropout(rate, kind, block_size) if rate > 0 else None


def _bn(features: int, momentum: float, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(features, momentum=momentum, epsilon=1e-5, rngs=rngs)


def _conv(a: int, b: int, kernel: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    pad = (kernel - 1) // 2
    return nnx.Conv(a, b, (kernel, kernel), (stride, stride), padding=((pad, pad), (pad, pad)),
                    use_bias=False, kernel_init=_CONV_INIT, rngs=rngs)


class _Shortcut(nnx.Module):
    """Identity, option A (subsample + zero-pad channels) or option B (1x1 conv + BN)."""

    def __init__(self, a: int, b: int, stride: int, option: str, momentum: float,
                 rngs: nnx.Rngs):
        self.stride = stride
        self.pad = b - a
        self.project = option == "B" and (stride != 1 or a != b)
        self.conv = _conv(a, b, 1, stride, rngs) if self.project else None
        self.bn = _bn(b, momentum, rngs) if self.project else None

    def __call__(self, x, train: bool):
        if self.project:
            return self.bn(self.conv(x), use_running_average=not train)
        if self.stride > 1:
            x = x[:, :: self.stride, :: self.stride, :]
        if self.pad > 0:
            half = self.pad // 2
            x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (half, self.pad - half)))
        return x


class _Block(nnx.Module):
    """A basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1 with 4x expansion) residual block."""

    def __init__(self, a: int, width: int, stride: int, *, bottleneck: bool, shortcut: str,
                 inner: tuple, drop_path_rate: float, momentum: float, rngs: nnx.Rngs):
        if bottleneck:
            out = 4 * width
            shapes = ((a, width, 1, 1), (width, width, 3, stride), (width, out, 1, 1))
        else:
            out = width
            shapes = ((a, width, 3, stride), (width, width, 3, 1))
        self.convs = nnx.List([_conv(i, o, k, s, rngs) for i, o, k, s in shapes])
        self.bns = nnx.List([_bn(o, momentum, rngs) for _, o, _, _ in shapes])
        self.dropouts = nnx.List([_inner_dropout(*inner) for _ in shapes[:-1]])
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else None
        self.shortcut = _Shortcut(a, out, stride, shortcut, momentum, rngs)
        self.out_features = out

    def __call__(self, x, *, key, deterministic: bool, train: bool):
        keys = split_key(key, len(self.convs))
        h = x
        for conv, bn, drop, k in zip(self.convs[:-1], self.bns[:-1], self.dropouts, keys,
                                     strict=False):
            h = nnx.relu(bn(conv(h), use_running_average=not train))
            h = call_optional(drop, h, k, deterministic)
        h = self.bns[-1](self.convs[-1](h), use_running_average=not train)
        h = call_optional(self.drop_path, h, keys[-1], deterministic)
        return nnx.relu(h + self.shortcut(x, train))


class ResNet(StochasticModule):
    """A residual network; see the module docstring for the dropout options.

    Args:
      stage_sizes: blocks per stage, e.g. ``(3, 3, 3)`` for ResNet-20.
      widths: each stage's (inner) width; a bottleneck block outputs 4x its width.
      block: ``"basic"`` or ``"bottleneck"``.
      stem: ``"cifar"`` (3x3 conv) or ``"imagenet"`` (7x7/2 conv and 3x3/2 max-pool).
      shortcut: ``"A"`` (parameter-free) or ``"B"`` (projection where the shape changes).
      num_classes: the number of logits.
      in_channels: input channels.
      head_rate: drop probability before the classifier.
      block_rate: drop probability between the convolutions of a residual branch.
      block_dropout: ``"standard"``, ``"spatial"`` or ``"dropblock"``.
      block_size: DropBlock's block side (clipped to each feature map's size).
      block_stages: indices of the stages that use ``block_rate`` (default: all).
      drop_path_rate: stochastic depth rate of the last block (linear decay from 0).
      bn_momentum: BatchNorm running-average momentum (0.9 = PyTorch's 0.1).
      deterministic: the default dropout mode (``False``: training); ``model.eval()`` sets it.
      rngs: ``nnx.Rngs`` for parameter initialisation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = ResNet((1, 1), widths=(4, 8), head_rate=0.5, rngs=nnx.Rngs(0))
      >>> x = jnp.ones((2, 8, 8, 3))
      >>> model(x, key=jax.random.key(1), train=True).shape   # batch stats, dropout
      (2, 10)
      >>> model(x, deterministic=True).dtype                    # inference
      dtype('float32')
    """

    def __init__(
        self,
        stage_sizes: Sequence[int],
        *,
        widths: Sequence[int] = (16, 32, 64),
        block: str = "basic",
        stem: str = "cifar",
        shortcut: str = "A",
        num_classes: int = 10,
        in_channels: int = 3,
        head_rate: float = 0.0,
        block_rate: float = 0.0,
        block_dropout: str = "standard",
        block_size: int = 7,
        block_stages: Sequence[int] | None = None,
        drop_path_rate: float = 0.0,
        bn_momentum: float = 0.9,
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.deterministic = deterministic
        stage_sizes, widths = tuple(stage_sizes), tuple(widths)
        if len(stage_sizes) != len(widths) or not stage_sizes:
            raise ValueError(
                f"stage_sizes and widths need one entry per stage, got "
                f"stage_sizes={stage_sizes!r}, widths={widths!r}"
            )
        for name, value, options in (("block", block, ("basic", "bottleneck")),
                                     ("stem", stem, ("cifar", "imagenet")),
                                     ("shortcut", shortcut, ("A", "B")),
                                     ("block_dropout", block_dropout, BLOCK_DROPOUTS)):
            check_choice(value, name, options)
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate!r}")
        stages = range(len(stage_sizes)) if block_stages is None else tuple(block_stages)
        stem_width = widths[0] if stem == "cifar" else 64
        self.stem_pool = stem == "imagenet"
        self.stem = _conv(in_channels, stem_width, 3 if stem == "cifar" else 7,
                          1 if stem == "cifar" else 2, rngs)
        self.stem_bn = _bn(stem_width, bn_momentum, rngs)
        total = sum(stage_sizes)
        blocks, channels, index = [], stem_width, 0
        for stage, (count, width) in enumerate(zip(stage_sizes, widths, strict=True)):
            rate = block_rate if stage in stages else 0.0
            for position in range(count):
                index += 1
                stride = 2 if stage > 0 and position == 0 else 1
                blocks.append(_Block(
                    channels, width, stride, bottleneck=block == "bottleneck",
                    shortcut=shortcut, inner=(rate, block_dropout, block_size),
                    drop_path_rate=drop_path_rate * index / total, momentum=bn_momentum,
                    rngs=rngs,
                ))
                channels = blocks[-1].out_features
        self.blocks = nnx.List(blocks)
        self.head_dropout = optional_dropout(head_rate)
        self.head = nnx.Linear(channels, num_classes, rngs=rngs)

    def __call__(self, x, *, key=None, deterministic=None, train: bool = False):
        """Logits ``(N, num_classes)``.

        Args:
          x: images ``(N, H, W, C)``.
          key: dropout key (required while training).
          deterministic: turn every dropout off (default: ``self.deterministic``).
          train: BatchNorm uses (and updates the running averages with) batch statistics;
            ``False`` uses the running averages.

        Raises:
          ValueError: dropout in training mode without ``key``.
        """
        keys, det = layer_keys(self, key, deterministic, len(self.blocks) + 1)
        h = nnx.relu(self.stem_bn(self.stem(x), use_running_average=not train))
        if self.stem_pool:
            h = nnx.max_pool(h, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for block, k in zip(self.blocks, keys[:-1], strict=True):
            h = block(h, key=k, deterministic=det, train=train)
        h = call_optional(self.head_dropout, jnp.mean(h, axis=(1, 2)), keys[-1], det)
        return self.head(h)


def cifar_resnet(depth: int, **kwargs) -> ResNet:
    """The CIFAR ResNet of depth ``6n + 2`` (option-A shortcuts, 16/32/64 channels).

    ``block_size`` defaults to 3 here (CIFAR feature maps are 32, 16 and 8 wide).

    Args:
      depth: 20, 32, 44, 56, 110, ... (``(depth - 2) % 6 == 0``).
      **kwargs: other :class:`ResNet` arguments (``rngs`` is required).

    Returns:
      A :class:`ResNet`.

    Raises:
      ValueError: ``depth`` not of the form ``6n + 2``.

    Examples:
      >>> import jax
      >>> from flax import nnx
      >>> model = nnx.eval_shape(lambda: cifar_resnet(20, rngs=nnx.Rngs(0)))
      >>> sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
      269722

    References:
      He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition". CVPR 2016.
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 (20, 32, 56, ...), got depth={depth!r}")
    n = (depth - 2) // 6
    kwargs.setdefault("block_size", 3)
    return ResNet((n, n, n), widths=(16, 32, 64), block="basic", stem="cifar", shortcut="A",
                  **kwargs)


def resnet20(**kwargs) -> ResNet:
    """CIFAR ResNet-20 (0.27M parameters); ``kwargs`` as :class:`ResNet`."""
    return cifar_resnet(20, **kwargs)


def resnet32(**kwargs) -> ResNet:
    """CIFAR ResNet-32 (0.46M parameters); ``kwargs`` as :class:`ResNet`."""
    return cifar_resnet(32, **kwargs)


def resnet56(**kwargs) -> ResNet:
    """CIFAR ResNet-56 (0.85M parameters); ``kwargs`` as :class:`ResNet`."""
    return cifar_resnet(56, **kwargs)


# depth -> (blocks per stage, block type) of the ImageNet ResNets.
_IMAGENET_STAGES = {18: ((2, 2, 2, 2), "basic"), 50: ((3, 4, 6, 3), "bottleneck")}


def imagenet_resnet(depth: int, **kwargs) -> ResNet:
    """The ImageNet ResNet of ``depth`` (option-B shortcuts, 64-512 channels, 1000 classes).

    Args:
      depth: 18 or 50.
      **kwargs: other :class:`ResNet` arguments (``rngs`` is required); ``num_classes``
        defaults to 1000.

    Returns:
      A :class:`ResNet`.

    Raises:
      ValueError: another ``depth``.

    Examples:
      >>> import jax
      >>> from flax import nnx
      >>> for depth in (18, 50):
      ...     model = nnx.eval_shape(lambda: imagenet_resnet(depth, rngs=nnx.Rngs(0)))
      ...     print(sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param))))
      11689512
      25557032

    References:
      He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition". CVPR 2016.
    """
    if depth not in _IMAGENET_STAGES:
        raise ValueError(f"depth must be one of {sorted(_IMAGENET_STAGES)}, got depth={depth!r}")
    stages, block = _IMAGENET_STAGES[depth]
    kwargs.setdefault("num_classes", 1000)
    return ResNet(stages, widths=(64, 128, 256, 512), block=block, stem="imagenet",
                  shortcut="B", **kwargs)


def resnet18(**kwargs) -> ResNet:
    """ImageNet ResNet-18 (11.69M parameters with 1000 classes); ``kwargs`` as :class:`ResNet`."""
    return imagenet_resnet(18, **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ImageNet ResNet-50 (25.56M parameters with 1000 classes); ``kwargs`` as :class:`ResNet`."""
    return imagenet_resnet(50, **kwargs)
