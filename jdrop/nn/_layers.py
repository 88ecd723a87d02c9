"""Flax NNX dropout layers: thin modules over the pure :mod:`jdrop` functions.

Every layer is called as ``layer(x, *, key=None, deterministic=None)``: training (the
default, ``deterministic=False`` at construction) needs a key, and a missing key is a
``ValueError``; inference is explicit, ``deterministic=True`` at the call or
``model.eval()`` (``model.train()`` switches back), see :mod:`jdrop.nn._mode`. No layer but
the drop-in :class:`Dropout` (which also takes Flax's ``rngs``) holds RNG state, so a model
built from them is a pure function of ``(state, key, x)`` after ``nnx.split``
(:func:`jdrop.nn.pure_apply`). A model gives each layer its own key
(:func:`jdrop.nn.split_key`), never one key to two layers.

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
from jdrop._validation import check_int, check_number, check_rate
from jdrop.nn._mode import (
    StochasticModule,
    is_deterministic,
    missing_key_error,
    training_key,
)

_KERNEL_INIT = nnx.initializers.lecun_normal()
_BIAS_INIT = nnx.initializers.zeros_init()


def _rng_stream(rngs, rng_collection: str):
    """The stream a :class:`Dropout` keeps, as ``flax.nnx.Dropout`` does (a fork)."""
    if isinstance(rngs, nnx.Rngs):
        return rngs[rng_collection].fork()
    if isinstance(rngs, nnx.RngStream):
        return rngs.fork()
    if rngs is None:
        return nnx.data(None)
    raise TypeError(f"rngs must be an nnx.Rngs, an nnx.RngStream or None, got {type(rngs)}")


def _key_from_rngs(rngs, rng_collection: str):
    """A key from an ``nnx.Rngs`` (its ``rng_collection`` stream), a stream, or a key."""
    if isinstance(rngs, nnx.Rngs):
        return rngs[rng_collection]()
    if isinstance(rngs, nnx.RngStream):
        return rngs()
    if isinstance(rngs, jax.Array):
        return rngs
    raise TypeError(f"rngs must be an nnx.Rngs, an nnx.RngStream or a key, got {type(rngs)}")


class Dropout(StochasticModule):
    r"""Dropout layer: :func:`jdrop.dropout` with the rate fixed at construction.

    :math:`y = m \odot x / (1 - p)`, :math:`m \sim \mathrm{Bernoulli}(1 - p)` while training
    (:math:`p` = ``rate``), :math:`y = x` in inference. A drop-in for ``flax.nnx.Dropout``:
    the same constructor (``rate``,
    ``broadcast_dims``, ``deterministic``, ``rng_collection``, ``rngs``) and call
    (``deterministic=``, ``rngs=``), and ``model.eval()`` / ``model.train()`` toggle it;
    the mask comes from jdrop's counter-based generator. The key is, in order: the call's
    ``key``, the call's ``rngs``, the ``rngs`` given at construction (a fork of its
    ``rng_collection`` stream, as in Flax). Training with none of them is a ``ValueError``.

    Args:
      rate: drop probability in ``[0, 1]``.
      broadcast_dims: axes sharing one mask value.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.
      rng_collection: the ``nnx.Rngs`` stream drawn from.
      rngs: an ``nnx.Rngs`` or ``nnx.RngStream`` to draw keys from, or ``None``.
      inverted: scale at train time (default); ``False`` scales by ``1 - rate`` at test.
      impl: ``"counter"`` (default) or ``"jax"``, see :func:`jdrop.keep_mask`.
      regenerate_mask: recompute the mask in the backward pass instead of storing it.

    Raises:
      ValueError: ``rate`` outside ``[0, 1]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> layer = Dropout(0.5)
      >>> y = layer(jnp.ones((2, 4)), key=jax.random.key(0))
      >>> sorted(set(y.ravel().tolist()))
      [0.0, 2.0]
      >>> layer(jnp.ones(3), deterministic=True)           # inference
      Array([1., 1., 1.], dtype=float32)
      >>> layer = Dropout(0.5, rngs=nnx.Rngs(dropout=0))  # as flax.nnx.Dropout
      >>> layer(jnp.ones((2, 4))).shape
      (2, 4)
      >>> layer.eval(); layer(jnp.ones(3))
      Array([1., 1., 1.], dtype=float32)

    References:
      Srivastava et al. "Dropout". JMLR 2014.
    """

    def __init__(
        self,
        rate: float,
        *,
        broadcast_dims: Sequence[int] = (),
        deterministic: bool | None = False,
        rng_collection: str = "dropout",
        rngs: nnx.Rngs | nnx.RngStream | None = None,
        inverted: bool = True,
        impl: str = "counter",
        regenerate_mask: bool = False,
    ):
        self.rate = check_rate(rate)
        self.broadcast_dims = tuple(broadcast_dims)
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        self.rngs = _rng_stream(rngs, rng_collection)
        self.inverted = inverted
        self.impl = impl
        self.regenerate_mask = regenerate_mask

    def __call__(self, x, *, key=None, deterministic=None, rngs=None):
        """Applies dropout while training; ``deterministic=True`` (or ``eval()``) is inference.

        Args:
          x: the input.
          key: PRNG key for the mask.
          deterministic: overrides ``self.deterministic`` when not ``None``.
          rngs: an ``nnx.Rngs``, ``nnx.RngStream`` or key, used when ``key`` is ``None``.

        Returns:
          The masked, rescaled input (``x`` itself in inference).

        Raises:
          ValueError: training without ``key`` or ``rngs`` (here or at construction).
        """
        if is_deterministic(self, deterministic):
            key = None
        elif key is None:
            source = self.rngs if rngs is None else rngs
            if source is None:
                raise missing_key_error(self)
            if self.rate == 0.0:  # as flax.nnx.Dropout: no key is drawn at rate 0
                return x
            key = _key_from_rngs(source, self.rng_collection)
        return dropout(
            key, x, self.rate, broadcast_dims=self.broadcast_dims, deterministic=key is None,
            inverted=self.inverted, impl=self.impl, regenerate_mask=self.regenerate_mask,
        )


class SpatialDropout(StochasticModule):
    """Drops whole feature maps: :func:`jdrop.spatial_dropout` (1-D, 2-D, 3-D inputs).

    Args:
      rate: drop probability in ``[0, 1]``.
      channel_axis: the channel axis (default last: channels-last inputs).
      batch_axis: the batch axis, or ``None`` for an unbatched input.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = SpatialDropout(0.5)(jnp.ones((2, 3, 3, 4)), key=jax.random.key(0))
      >>> bool(((y == 0).all(axis=(1, 2)) | (y == 2).all(axis=(1, 2))).all())
      True

    References:
      Tompson et al. "Efficient Object Localization Using Convolutional Networks". CVPR 2015.
    """

    def __init__(
        self, rate: float, *, channel_axis: int = -1, batch_axis: int | None = 0,
        deterministic: bool = False,
    ):
        self.rate = check_rate(rate)
        self.deterministic = deterministic
        self.channel_axis = channel_axis
        self.batch_axis = batch_axis

    def __call__(self, x, *, key=None, deterministic=None):
        """Applies spatial dropout with ``key``; ``deterministic=True`` is inference."""
        key = training_key(self, key, deterministic)
        return spatial_dropout(
            key, x, self.rate, channel_axis=self.channel_axis, batch_axis=self.batch_axis,
            deterministic=key is None,
        )


class AlphaDropout(StochasticModule):
    """Alpha dropout for SELU networks: :func:`jdrop.alpha_dropout`.

    Keeps zero mean and unit variance: dropped units are set to SELU's negative
    saturation value and an affine map restores the moments.

    Args:
      rate: drop probability in ``[0, 1]``.
      broadcast_dims: axes sharing one mask value.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = AlphaDropout(0.1)(jnp.zeros((4, 4)), key=jax.random.key(0))
      >>> y.shape, y.dtype
      ((4, 4), dtype('float32'))

    References:
      Klambauer, Unterthiner, Mayr, Hochreiter. "Self-Normalizing Neural Networks".
      NeurIPS 2017.
    """

    def __init__(
        self, rate: float, *, broadcast_dims: Sequence[int] = (), deterministic: bool = False
    ):
        self.rate = check_rate(rate)
        self.deterministic = deterministic
        self.broadcast_dims = tuple(broadcast_dims)

    def __call__(self, x, *, key=None, deterministic=None):
        """Applies alpha dropout with ``key``; ``deterministic=True`` is inference."""
        key = training_key(self, key, deterministic)
        return alpha_dropout(
            key, x, self.rate, broadcast_dims=self.broadcast_dims, deterministic=key is None
        )


class GaussianDropout(StochasticModule):
    r"""Multiplicative Gaussian noise :math:`y = x \odot (1 + \sqrt{p / (1 - p)}\, \varepsilon)`.

    With :math:`\varepsilon \sim \mathcal{N}(0, 1)` elementwise and :math:`p` = ``rate``
    (:func:`jdrop.gaussian_dropout`): the same mean and variance as Bernoulli dropout with
    drop probability :math:`p`.

    Args:
      rate: the Bernoulli drop probability being matched, in ``[0, 1)``.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> GaussianDropout(0.5)(jnp.ones(2), deterministic=True)
      Array([1., 1.], dtype=float32)
      >>> GaussianDropout(0.5)(jnp.ones(2), key=jax.random.key(0)).shape
      (2,)

    References:
      Srivastava et al. "Dropout". JMLR 2014, section 10.
    """

    def __init__(self, rate: float, *, deterministic: bool = False):
        self.rate = check_rate(rate, allow_one=False)
        self.deterministic = deterministic

    def __call__(self, x, *, key=None, deterministic=None):
        """Applies Gaussian dropout with ``key``; ``deterministic=True`` is inference."""
        key = training_key(self, key, deterministic)
        return gaussian_dropout(key, x, self.rate, deterministic=key is None)


class DropPath(StochasticModule):
    """Stochastic depth: drops a residual branch per example, :func:`jdrop.drop_path`.

    Use as ``h + drop_path(branch(h), key=key)``.

    Args:
      rate: probability of dropping the branch for an example.
      batch_axis: the example axis.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = DropPath(0.5)(jnp.ones((6, 3)), key=jax.random.key(0))
      >>> bool(((y == 0).all(axis=1) | (y == 2).all(axis=1)).all())
      True

    References:
      Huang, Sun, Liu, Sedra, Weinberger. "Deep Networks with Stochastic Depth". ECCV 2016.
    """

    def __init__(self, rate: float, *, batch_axis: int = 0, deterministic: bool = False):
        self.rate = check_rate(rate)
        self.deterministic = deterministic
        self.batch_axis = batch_axis

    def __call__(self, x, *, key=None, deterministic=None):
        """Applies stochastic depth with ``key``; ``deterministic=True`` is inference."""
        key = training_key(self, key, deterministic)
        return drop_path(key, x, self.rate, batch_axis=self.batch_axis, deterministic=key is None)


class DropBlock(StochasticModule):
    """Drops contiguous ``block_size`` regions of feature maps: :func:`jdrop.dropblock`.

    Args:
      rate: target fraction of dropped activations, in ``[0, 1]``.
      block_size: side of a block; at most the smallest spatial size of the input.
      channel_axis: the channel axis (default last).
      batch_axis: the batch axis.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

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
        self, rate: float, *, block_size: int = 7, channel_axis: int = -1, batch_axis: int = 0,
        deterministic: bool = False,
    ):
        self.rate = check_rate(rate)
        self.block_size = check_int(block_size, "block_size", 1)
        self.deterministic = deterministic
        self.channel_axis = channel_axis
        self.batch_axis = batch_axis

    def __call__(self, x, *, key=None, deterministic=None):
        """Applies DropBlock with ``key``; ``deterministic=True`` is inference."""
        key = training_key(self, key, deterministic)
        return dropblock(
            key, x, self.rate, block_size=self.block_size, channel_axis=self.channel_axis,
            batch_axis=self.batch_axis, deterministic=key is None,
        )


class ConcreteDropout(StochasticModule):
    r"""Concrete dropout with a learned drop probability :math:`p = \sigma(\text{logit})`.

    The logit is an ``nnx.Param``, trained with the model's other parameters;
    :func:`jdrop.concrete_dropout` gives the relaxation. Add :meth:`regularizer` of the
    weights this layer feeds to the loss:

    .. math::

       R(p, W) = \lambda_W \frac{\lVert W \rVert_2^2}{1 - p}
       + \lambda_p K \left(p \log p + (1 - p) \log(1 - p)\right).

    :math:`p` is clipped to :math:`[10^{-6}, 1 - 10^{-6}]` so that it never reaches 1.

    Args:
      init_rate: the initial drop probability, in ``(0, 1)``.
      temperature: the Concrete relaxation temperature (0.1 in the paper).
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

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

    def __init__(
        self, init_rate: float = 0.1, *, temperature: float = 0.1, deterministic: bool = False
    ):
        rate = check_rate(init_rate, "init_rate", allow_one=False)
        if rate <= 0.0:
            raise ValueError(f"init_rate must be in (0, 1), got init_rate={init_rate!r}")
        self.logit = nnx.Param(jnp.asarray(math.log(rate) - math.log1p(-rate), jnp.float32))
        self.temperature = check_number(temperature, "temperature", positive=True)
        self.deterministic = deterministic

    @property
    def rate(self) -> jax.Array:
        r"""The current drop probability :math:`\sigma(\text{logit})` (differentiable)."""
        p = jax.nn.sigmoid(self.logit[...])
        return jnp.clip(p, np.float32(1e-6), np.float32(1 - 1e-6))

    def __call__(self, x, *, key=None, deterministic=None):
        """Applies concrete dropout with ``key``; inference (``deterministic``) is ``y = x``."""
        key = training_key(self, key, deterministic)
        return concrete_dropout(
            key, x, self.rate, temperature=self.temperature, deterministic=key is None
        )

    def regularizer(
        self, weights, *, input_dim: int, weight_regularizer: float, dropout_regularizer: float
    ) -> jax.Array:
        r"""The penalty :math:`R(p, W)` for the ``weights`` this layer feeds.

        See :func:`jdrop.concrete_dropout_regularizer`.

        Args:
          weights: the next layer's weights (an array or pytree).
          input_dim: :math:`K`, the number of features dropped.
          weight_regularizer: :math:`\lambda_W`, :math:`l^2 / N` in the paper.
          dropout_regularizer: :math:`\lambda_p`, :math:`2 / (\tau N)` in the paper.

        Returns:
          A float32 scalar to add to the loss.
        """
        return concrete_dropout_regularizer(
            self.rate, weights, input_dim=input_dim, weight_regularizer=weight_regularizer,
            dropout_regularizer=dropout_regularizer,
        )


class DropConnectDense(StochasticModule):
    r"""A dense layer whose weights are dropped: :math:`y = x \left(M \odot W / (1 - p)\right) + b`.

    One mask :math:`M \sim \mathrm{Bernoulli}(1 - p)` per call (:math:`p` = ``rate``),
    shared by the batch (draw a mask per example with ``jax.vmap`` over keys); the bias is
    not dropped. In inference, :math:`y = x W + b`, the mean of the training-time layer
    (Wan et al. moment-match a
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
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

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
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.rate = check_rate(rate)
        self.deterministic = deterministic
        self.kernel = nnx.Param(kernel_init(rngs.params(), (in_features, out_features)))
        self.bias = nnx.Param(bias_init(rngs.params(), (out_features,))) if use_bias else None

    def __call__(self, x, *, key=None, deterministic=None):
        """``x @ W'`` with a fresh DropConnect mask from ``key``; or ``x @ W`` in inference."""
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(
                "DropConnectDense: x must have a floating dtype (an integer matmul would "
                f"truncate the weights), got x.dtype={x.dtype}"
            )
        key = training_key(self, key, deterministic)
        kernel = dropconnect(key, self.kernel[...], self.rate, deterministic=key is None)
        y = jnp.matmul(x, kernel.astype(x.dtype))
        if self.bias is not None:
            y = y + self.bias[...].astype(y.dtype)
        return y
