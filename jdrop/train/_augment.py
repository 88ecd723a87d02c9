"""Data augmentation with explicit keys: random crops and horizontal flips.

Both act on a batch of channels-last images ``(N, H, W, C)``, draw one decision per image
from the key, and are pure: the same key gives the same augmented batch, under ``jit`` or
not. Inside a training step split the step's key so that augmentation and dropout never
share a key::

    aug_key, drop_key = jax.random.split(key)
    crop_key, flip_key = jax.random.split(aug_key)
    images = random_flip(flip_key, random_crop(crop_key, images, padding=4))

References:
  Krizhevsky, Sutskever, Hinton. "ImageNet Classification with Deep Convolutional Neural
  Networks". NIPS 2012.
  He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition". CVPR 2016
  (4-pixel padding and 32x32 crops on CIFAR-10).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jdrop._keys import as_key

__all__ = ["random_crop", "random_flip"]


def _check_images(images) -> jax.Array:
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(
            "images must be a batch of channels-last images (N, H, W, C), got "
            f"images.shape={images.shape}"
        )
    return images


def random_crop(key, images, padding: int, *, mode: str = "constant") -> jax.Array:
    """Pads every image by ``padding`` pixels on each side and crops it back at random.

    Image ``n`` becomes ``pad(images)[n, i:i+H, j:j+W, :]`` with offsets ``i, j`` drawn
    uniformly from ``{0, ..., 2 * padding}``, independently per image.

    Args:
      key: a PRNG key (typed or legacy ``uint32[2]``).
      images: ``(N, H, W, C)`` array, channels last.
      padding: pixels added on each side (``0`` returns the images unchanged).
      mode: ``jnp.pad`` mode for the border: ``"constant"`` (zeros, default), ``"edge"``
        or ``"reflect"``.

    Returns:
      An array with the shape and dtype of ``images``.

    Raises:
      ValueError: for images that are not 4-D, a negative ``padding`` or an unknown
        ``mode``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> images = jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)
      >>> random_crop(jax.random.key(0), images, 2).shape
      (2, 4, 4, 1)
      >>> bool((random_crop(jax.random.key(0), images, 0) == images).all())
      True
    """
    images = _check_images(images)
    if isinstance(padding, bool) or not isinstance(padding, int | np.integer) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got padding={padding!r}")
    if mode not in ("constant", "edge", "reflect"):
        raise ValueError(f"mode must be 'constant', 'edge' or 'reflect', got mode={mode!r}")
    if padding == 0:
        return images
    return _crop(as_key(key), images, int(padding), mode)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _crop(key, images, padding: int, mode: str) -> jax.Array:
    n, h, w, c = images.shape
    widths = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    padded = jnp.pad(images, widths, mode=mode)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1, dtype=jnp.int32)
    zero = jnp.zeros((), jnp.int32)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], zero), (h, w, c))

    return jax.vmap(crop)(padded, offsets)


def random_flip(key, images, rate: float = 0.5) -> jax.Array:
    r"""Mirrors each image left-right with probability ``rate``.

    Image :math:`n` becomes ``images[n, :, ::-1, :]`` when :math:`u_n < p`, with
    :math:`u_n \sim \mathcal{U}[0, 1)` and :math:`p` = ``rate``.

    Args:
      key: a PRNG key (typed or legacy ``uint32[2]``).
      images: ``(N, H, W, C)`` array, channels last.
      rate: the probability of a flip, in ``[0, 1]``.

    Returns:
      An array with the shape and dtype of ``images``.

    Raises:
      ValueError: for images that are not 4-D or a ``rate`` outside ``[0, 1]``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> images = jnp.arange(3, dtype=jnp.float32).reshape(1, 1, 3, 1)
      >>> random_flip(jax.random.key(0), images, rate=1.0)[0, 0, :, 0]
      Array([2., 1., 0.], dtype=float32)
    """
    images = _check_images(images)
    if isinstance(rate, bool) or not 0.0 <= float(rate) <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got rate={rate!r}")
    return _flip(as_key(key), images, np.float32(rate))


@jax.jit
def _flip(key, images, rate) -> jax.Array:
    flip = jax.random.uniform(key, (images.shape[0],)) < rate
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)
