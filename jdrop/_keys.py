"""PRNG keys: the one place jdrop turns user keys into typed keys and derives new ones.

Every stochastic function and every model accepts a typed key (``jax.random.key``) or a
legacy ``uint32[2]`` key (``jax.random.PRNGKey``); :func:`as_key` normalises both.
:func:`split_key` is the one way to derive per-layer keys (``None`` flows through, so
inference code has the same shape as training code), and :func:`key_words` draws the two
32-bit words that seed the counter-based mask generator.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["as_key", "key_words", "split_key"]


def as_key(key) -> jax.Array:
    """Returns a typed PRNG key for a typed key or a legacy ``uint32[2]`` key.

    Raises:
      TypeError: if ``key`` is neither a scalar typed key nor a ``uint32[2]`` array.

    Examples:
      >>> import jax
      >>> as_key(jax.random.PRNGKey(0)).shape
      ()
    """
    if key is None:
        raise TypeError("key is None: pass key=jax.random.key(seed)")
    key = key if isinstance(key, jax.Array) else jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        typed = key
    elif key.dtype == jnp.uint32 and key.shape == (2,):
        typed = jax.random.wrap_key_data(key)
    else:
        raise TypeError(
            "key must be a typed key (jax.random.key) or a legacy uint32[2] key "
            f"(jax.random.PRNGKey), got dtype={key.dtype}, shape={key.shape}"
        )
    if typed.shape != ():
        raise TypeError(
            f"key must be a single key, got a batch of keys with shape {typed.shape}; "
            "map over keys with jax.vmap"
        )
    return typed


def key_words(key, count: int = 2) -> jax.Array:
    """``count`` uint32 words drawn from ``key`` with JAX's own generator."""
    return jax.random.bits(as_key(key), (count,), jnp.uint32)


def split_key(key, n: int) -> tuple:
    """Splits ``key`` into ``n`` independent keys; ``None`` gives ``n`` ``None`` s.

    The one way jdrop models derive per-layer keys: ``None`` (deterministic inference)
    flows through unchanged, so a model's code has a single path for both modes.

    Args:
      key: a typed key, a legacy ``uint32[2]`` key, or ``None``.
      n: how many keys (``>= 0``).

    Returns:
      A tuple of ``n`` typed keys (``jax.random.split``), or ``(None,) * n``.

    Raises:
      ValueError: ``n`` negative or not an int.

    Examples:
      >>> import jax
      >>> split_key(None, 2)
      (None, None)
      >>> k1, k2 = split_key(jax.random.key(0), 2)
      >>> bool(jax.random.key_data(k1)[0] != jax.random.key_data(k2)[0])
      True
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got n={n!r}")
    if key is None:
        return (None,) * n
    if n == 0:
        return ()
    return tuple(jax.random.split(as_key(key), n))
