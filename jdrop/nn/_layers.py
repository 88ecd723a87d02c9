"""Flax NNX dropout layers: thin modules over the pure :mod:`jdrop` functions.

Every layer takes its PRNG key as a call argument, ``layer(x, key=key)``; ``key=None``
means deterministic inference. No layer holds RNG state (no ``nnx.Rngs`` stream), so a
model built from them is a pure function of ``(state, key, x)`` after ``nnx.split``
(:func:`jdrop.nn._apply.pure_apply`). A model gives each layer its own key
(:func:`jdrop.nn._apply.split_key`), never one key to two layers.

References:
  Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov. "Dropout: A Simple Way to
  Prevent Neural Networks from Overfitting". JMLR 2014.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jdrop._alpha import alpha_dropout
from jdrop._concrete import concrete_dropout, concrete_dropout_regularizer
from jdrop._dropblock import dropblock
from jdrop._dropout import drop_path, dropconnect, dropout, spatial_dropout
from jdrop._gaussian import gaussian_dropout
from jdrop._validation import concrete_rate

__all__ = [
    "AlphaDropout",
    "ConcreteDropout",
    "DropBlock",
    "DropConnectDense",
    "DropPath",
    "Dropout",
    "GaussianDropout",
    "SpatialDropout",
]

_KERNEL_INIT = nnx.initializers.lecun_normal()
_BIAS_INIT = nnx.initializers.zeros_init()


def _rate(rate, *, allow_one: bool = True) -> float:
    """Checks a layer's drop rate at construction and returns it as a Python float."""
    value = concrete_rate(rate, allow_one=allow_one)
    if value is None:
        raise TypeError(f"rate must be a concrete number when building a layer, got rate={rate!r}")
    return value


class Dropout(nnx.Module):
    """Dropout layer: :func:`jdrop.dropout` with the rate fixed at construction.

    ``y = m * x / (1 - rate)``, ``m ~ Bernoulli(1 - rate)`` when a key is given, ``y = x``
    when ``key=None``.

    Args:
      rate: drop probability in ``[0, 1]``.
      broadcast_dims: axes sharing one mask value.
      inverted: scale at train time (default); ``False`` scales by ``1 - rate`` at test.
      impl: ``"counter"`` (default) or ``"jax"``, see :func:`jdrop.keep_mask`.
      regenerate_mask: recompute the mask in the backward pass instead of storing it.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> layer = Dropout(0.5)
      >>> y = layer(jnp.ones((2, 4)), key=jax.random.key(0))
      >>> sorted(set(y.ravel().tolist()))
      [0.0, 2.0]
      >>> layer(jnp.ones(3))                       # key=None: inference
      Array([1., 1., 1.], dtype=float32)

    References:
      Srivastava et al. "Dropout". JMLR 2014.
    """

    def __init__(
        self,
        rate: float,
        *,
        broadcast_dims: Sequence[int] = (),
        inverted: bool = True,
        impl: str = "counter",
        regenerate_mask: bool = False,
    ):
        self.rate = _rate(rate)
        self.broadcast_dims = tuple(broadcast_dims)
        self.inverted = inverted
        self.impl = impl
        self.regenerate_mask = regenerate_mask

    def __call__(self, x, *, key=None):
        """Applies dropout with ``key``; ``key=None`` is inference."""
        return dropout(
            key, x, self.rate, broadcast_dims=self.broadcast_dims, deterministic=key is None,
            inverted=self.inverted, impl=self.impl, regenerate_mask=self.regenerate_mask,
        )


class SpatialDropout(nnx.Module):
    """Drops whole feature maps: :func:`jdrop.spatial_dropout` (1-D, 2-D, 3-D inputs).

    Args:
      rate: drop probability in ``[0, 1]``.
      channel_axis: the channel axis (default last: channels-last inputs).
      batch_axis: the batch axis, or ``None`` for an unbatched input.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = SpatialDropout(0.5)(jnp.ones((2, 3, 3, 4)), key=jax.random.key(0))
      >>> bool(((y == 0).all(axis=(1, 2)) | (y == 2).all(axis=(1, 2))).all())
      True

    References:
      Tompson et al. "Efficient Object Localization Using Convolutional Networks". CVPR 2015.
    """

    def __init__(self, rate: float, *, channel_axis: int = -1, batch_axis: int | None = 0):
        self.rate = _rate(rate)
        self.channel_axis = channel_axis
        self.batch_axis = batch_axis

    def __call__(self, x, *, key=None):
        """Applies spatial dropout with ``key``; ``key=None`` is inference."""
        return spatial_dropout(
            key, x, self.rate, channel_axis=self.channel_axis, batch_axis=self.batch_axis,
            deterministic=key is None,
        )


class AlphaDropout(nnx.Module):
    """Alpha dropout for SELU networks: :func:`jdrop.alpha_dropout`.

    Keeps zero mean and unit variance: dropped units are set to SELU's negative
    saturation value and an affine map restores the moments.

    Args:
      rate: drop probability in ``[0, 1]``.
      broadcast_dims: axes sharing one mask value.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = AlphaDropout(0.1)(jnp.zeros((4, 4)), key=jax.random.key(0))
      >>> y.shape, y.dtype
      ((4, 4), dtype('float32'))

    References:
      Klambauer, Unterthiner, Mayr, Hochreiter. "Self-Normalizing Neural Networks".
      NeurIPS 2017.
    """

    def __init__(self, rate: float, *, broadcast_dims: Sequence[int] = ()):
        self.rate = _rate(rate)
        self.broadcast_dims = tuple(broadcast_dims)

    def __call__(self, x, *, key=None):
        """Applies alpha dropout with ``key``; ``key=None`` is inference."""
        return alpha_dropout(
            key, x, self.rate, broadcast_dims=self.broadcast_dims, deterministic=key is None
        )


class GaussianDropout(nnx.Module):
    """Multiplicative Gaussian noise ``y = x * (1 + sqrt(rate / (1 - rate)) * eps)``.

    :func:`jdrop.gaussian_dropout`: the same mean and variance as Bernoulli dropout with
    drop probability ``rate``.

    Args:
      rate: the Bernoulli drop probability being matched, in ``[0, 1)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> GaussianDropout(0.5)(jnp.ones(2))
      Array([1., 1.], dtype=float32)

    References:
      Srivastava et al. "Dropout". JMLR 2014, section 10.
    """

    def __init__(self, rate: float):
        self.rate = _rate(rate, allow_one=False)

    def __call__(self, x, *, key=None):
        """Applies Gaussian dropout with ``key``; ``key=None`` is inference."""
        return gaussian_dropout(key, x, self.rate, deterministic=key is None)


class DropPath(nnx.Module):
    """Stochastic depth: drops a residual branch per example, :func:`jdrop.drop_path`.

    Use as ``h + drop_path(branch(h), key=key)``.

    Args:
      rate: probability of dropping the branch for an example.
      batch_axis: the example axis.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = DropPath(0.5)(jnp.ones((6, 3)), key=jax.random.key(0))
      >>> bool(((y == 0).all(axis=1) | (y == 2).all(axis=1)).all())
      True

    References:
      Huang, Sun, Liu, Sedra, Weinberger. "Deep Networks with Stochastic Depth". ECCV 2016.
    """

    def __init__(self, rate: float, *, batch_axis: int = 0):
        self.rate = _rate(rate)
        self.batch_axis = batch_axis

    def __call__(self, x, *, key=None):
        """Applies stochastic depth with ``key``; ``key=None`` is inference."""
        return drop_path(key, x, self.rate, batch_axis=self.batch_axis, deterministic=key is None)


class DropBlock(nnx.Module):
    """Drops contiguous ``block_size`` regions of feature maps: :func:`jdrop.dropblock`.

    Args:
      rate: target fraction of dropped activations, in ``[0, 1]``.
      block_size: side of a block; at most the smallest spatial size of the input.
      channel_axis: the channel axis (default last).
      batch_axis: the batch axis.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = DropBlock(0.2, block_size=3)(jnp.ones((8, 16, 16, 4)), key=jax.random.key(0))
      >>> round(float((y == 0).mean()), 1)
      0.2

    References:
      Ghiasi, Lin, Le. "DropBlock: A regularization method for convolutional networks".
      NeurIPS 2018.
    """

    def __init__(
        self, rate: float, *, block_size: int = 7, channel_axis: int = -1, batch_axis: int = 0
    ):
        self.rate = _rate(rate)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
            raise ValueError(f"block_size must be a positive int, got block_size={block_size!r}")
        self.block_size = block_size
        self.channel_axis = channel_axis
        self.batch_axis = batch_axis

    def __call__(self, x, *, key=None):
        """Applies DropBlock with ``key``; ``key=None`` is inference."""
        return dropblock(
            key, x, self.rate, block_size=self.block_size, channel_axis=self.channel_axis,
            batch_axis=self.batch_axis, deterministic=key is None,
        )


class ConcreteDropout(nnx.Module):
    """Concrete dropout with a learned drop probability ``p = sigmoid(logit)``.

    The logit is an ``nnx.Param``, trained with the model's other parameters; add
    :meth:`regularizer` of the weights this layer feeds to the loss:

        R(p, W) = weight_regularizer * ||W||**2 / (1 - p)
                  + dropout_regularizer * K * (p log p + (1 - p) log(1 - p)).

    ``p`` is clipped to ``[1e-6, 1 - 1e-6]`` so that it never reaches 1.

    Args:
      init_rate: the initial drop probability, in ``(0, 1)``.
      temperature: the Concrete relaxation temperature (0.1 in the paper).

    Raises:
      ValueError: ``init_rate`` outside ``(0, 1)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> layer = ConcreteDropout(0.1)
      >>> round(float(layer.rate), 4)
      0.1
      >>> layer(jnp.ones((2, 3)), key=jax.random.key(0)).shape
      (2, 3)
      >>> r = layer.regularizer(jnp.ones((3, 2)), input_dim=3, weight_regularizer=1e-6,
      ...                       dropout_regularizer=1e-5)
      >>> r.shape, r.dtype
      ((), dtype('float32'))

    References:
      Gal, Hron, Kendall. "Concrete Dropout". NeurIPS 2017.
    """

    def __init__(self, init_rate: float = 0.1, *, temperature: float = 0.1):
        rate = _rate(init_rate, allow_one=False)
        if rate <= 0.0:
            raise ValueError(f"init_rate must be in (0, 1), got init_rate={init_rate!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got temperature={temperature!r}")
        self.logit = nnx.Param(jnp.asarray(math.log(rate) - math.log1p(-rate), jnp.float32))
        self.temperature = float(temperature)

    @property
    def rate(self) -> jax.Array:
        """The current drop probability ``sigmoid(logit)`` (differentiable)."""
        p = jax.nn.sigmoid(self.logit[...])
        return jnp.clip(p, np.float32(1e-6), np.float32(1 - 1e-6))

    def __call__(self, x, *, key=None):
        """Applies concrete dropout with ``key``; ``key=None`` is inference (``y = x``)."""
        return concrete_dropout(
            key, x, self.rate, temperature=self.temperature, deterministic=key is None
        )

    def regularizer(
        self, weights, *, input_dim: int, weight_regularizer: float, dropout_regularizer: float
    ) -> jax.Array:
        """The penalty ``R(p, W)`` for the ``weights`` this layer feeds.

        Args:
          weights: the next layer's weights (an array or pytree).
          input_dim: ``K``, the number of features dropped.
          weight_regularizer: ``l**2 / N`` in the paper.
          dropout_regularizer: ``2 / (tau * N)`` in the paper.

        Returns:
          A float32 scalar to add to the loss.
        """
        return concrete_dropout_regularizer(
            self.rate, weights, input_dim=input_dim, weight_regularizer=weight_regularizer,
            dropout_regularizer=dropout_regularizer,
        )


class DropConnectDense(nnx.Module):
    """A dense layer whose weights are dropped: ``y = x @ (M * W / (1 - rate)) + b``.

    One mask ``M ~ Bernoulli(1 - rate)`` per call, shared by the batch (draw a mask per
    example with ``jax.vmap`` over keys); the bias is not dropped. With ``key=None``,
    ``y = x @ W + b``, the mean of the training-time layer (Wan et al. moment-match a
    Gaussian at inference instead; its mean is the same). The matmul runs in ``x``'s
    dtype.

    Args:
      in_features: input size.
      out_features: output size.
      rate: drop probability per weight, in ``[0, 1]``.
      use_bias: add a bias.
      kernel_init: initialiser of the ``(in_features, out_features)`` kernel.
      bias_init: initialiser of the bias.
      rngs: ``nnx.Rngs`` for parameter initialisation only.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> layer = DropConnectDense(3, 2, 0.5, rngs=nnx.Rngs(0))
      >>> layer(jnp.ones((4, 3)), key=jax.random.key(1)).shape
      (4, 2)

    References:
      Wan, Zeiler, Zhang, LeCun, Fergus. "Regularization of Neural Networks using
      DropConnect". ICML 2013.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rate: float,
        *,
        use_bias: bool = True,
        kernel_init=_KERNEL_INIT,
        bias_init=_BIAS_INIT,
        rngs: nnx.Rngs,
    ):
        self.rate = _rate(rate)
        self.kernel = nnx.Param(kernel_init(rngs.params(), (in_features, out_features)))
        self.bias = nnx.Param(bias_init(rngs.params(), (out_features,))) if use_bias else None

    def __call__(self, x, *, key=None):
        """``x @ W'`` with a fresh DropConnect mask from ``key``; ``key=None`` is inference."""
        kernel = dropconnect(key, self.kernel[...], self.rate, deterministic=key is None)
        y = jnp.matmul(x, kernel.astype(x.dtype))
        if self.bias is not None:
            y = y + self.bias[...].astype(y.dtype)
        return y
