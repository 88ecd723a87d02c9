"""Dropout for recurrent networks: variational (locked) masks, word-type dropout, zoneout,
weight drop.

* Variational / locked dropout (Gal & Ghahramani 2016): one mask per sequence, shared by
  every time step; ``y[:, t] = m * x[:, t] / (1 - rate)``.
* Embedding (word-type) dropout: each word type of the vocabulary is dropped with
  probability ``rate`` for the whole batch, so every occurrence of a dropped word is zero.
* Zoneout (Krueger et al. 2016): ``h_t = d * h_{t-1} + (1 - d) * h~_t`` with
  ``d ~ Bernoulli(rate)``; at test ``h_t = rate * h_{t-1} + (1 - rate) * h~_t``.
* Weight drop (Merity et al. 2017): DropConnect on hidden-to-hidden matrices, one mask per
  forward pass of the whole sequence.

References:
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
  Merity, Keskar, Socher. "Regularizing and Optimizing LSTM Language Models". ICLR 2018.
  Krueger et al. "Zoneout: Regularizing RNNs by Randomly Preserving Hidden Activations".
  ICLR 2017.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jdrop._dropout import apply_mask, dropconnect, dropout
from jdrop._keys import as_key
from jdrop._masks import compute_dtype, keep_mask
from jdrop._validation import (
    check_float_array,
    concrete_rate,
    normalize_axis,
    poison_invalid_rate,
    require_key,
)

__all__ = ["embedding_dropout", "locked_dropout", "weight_drop", "zoneout"]


def locked_dropout(
    key,
    x,
    rate,
    *,
    time_axis: int = 1,
    deterministic: bool = False,
    impl: str = "counter",
) -> jax.Array:
    r"""Variational (locked) dropout: the same mask at every time step.

    :math:`y_{:, t} = m \odot x_{:, t} / (1 - p)` for every step :math:`t`, with one mask
    :math:`m \sim \mathrm{Bernoulli}(1 - p)` per sequence (:math:`p` = ``rate``), shared
    along ``time_axis`` (Gal & Ghahramani 2016).

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      x: ``(batch, time, features)`` by default.
      rate: drop probability in ``[0, 1]``.
      time_axis: the axis along which the mask is shared.
      deterministic, impl: as in :func:`jdrop.dropout`.

    Returns:
      An array like ``x``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> y = locked_dropout(jax.random.key(0), jnp.ones((2, 5, 3)), 0.5)
      >>> bool((y == y[:, :1]).all())
      True

    References:
      Gal & Ghahramani. NeurIPS 2016. Merity et al. ICLR 2018 ("LockedDropout").
    """
    x = check_float_array(x)
    axis = normalize_axis(time_axis, x.ndim, "time_axis")
    return dropout(key, x, rate, broadcast_dims=(axis,), deterministic=deterministic, impl=impl)


def embedding_dropout(
    key,
    ids,
    embedding,
    rate,
    *,
    deterministic: bool = False,
    impl: str = "counter",
) -> jax.Array:
    r"""Looks up ``embedding[ids]`` with whole word types dropped.

    :math:`y_{\dots} = m_{w} E_{w} / (1 - p)` for each token id :math:`w`, with one
    :math:`m_w \sim \mathrm{Bernoulli}(1 - p)` per word type of the vocabulary (:math:`p` =
    ``rate``, :math:`E` the embedding table): one mask per call, so every occurrence of a
    dropped word is zero.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      ids: integer token ids, any shape.
      embedding: ``(vocab_size, features)`` floating-point table.
      rate: probability of dropping a word type.
      deterministic, impl: as in :func:`jdrop.dropout`.

    Returns:
      ``ids.shape + (features,)`` array of ``embedding.dtype``.

    Raises:
      TypeError: non-integer ``ids``; ValueError: ``embedding`` not 2-D, bad ``rate``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> ids = jnp.array([[0, 1, 0, 2, 0]])
      >>> y = embedding_dropout(jax.random.key(3), ids, jnp.ones((3, 2)), 0.5)
      >>> bool((y[0, 0] == y[0, 2]).all() and (y[0, 0] == y[0, 4]).all())
      True

    References:
      Gal & Ghahramani. NeurIPS 2016, section 4. Merity et al. ICLR 2018.
    """
    ids = jnp.asarray(ids)
    if not jnp.issubdtype(ids.dtype, jnp.integer):
        raise TypeError(f"ids must be integer token ids, got ids.dtype={ids.dtype}")
    embedding = check_float_array(embedding, "embedding")
    if embedding.ndim != 2:
        raise ValueError(
            f"embedding must be (vocab_size, features), got embedding.shape={embedding.shape}"
        )
    concrete_rate(rate)
    rows = jnp.take(embedding, ids, axis=0)
    if deterministic:
        return rows
    require_key(key, deterministic, "embedding_dropout")
    keep = keep_mask(key, (embedding.shape[0],), rate, impl=impl)
    return apply_mask(rows, jnp.take(keep, ids, axis=0)[..., None], rate)


def zoneout(
    key,
    h_prev,
    h_new,
    rate,
    *,
    deterministic: bool = False,
    impl: str = "counter",
) -> jax.Array:
    r"""Zoneout: each hidden unit keeps its previous value with probability ``rate``.

    With :math:`p` = ``rate``, :math:`h_{t-1}` = ``h_prev`` and :math:`\tilde h_t` =
    ``h_new``:

    .. math::

       h_t = d \odot h_{t-1} + (1 - d) \odot \tilde h_t, \quad d \sim \mathrm{Bernoulli}(p)
       \quad \text{(training)}, \qquad h_t = p\, h_{t-1} + (1 - p)\, \tilde h_t
       \quad \text{(test: the expectation)}.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      h_prev: the previous hidden state.
      h_new: the cell's candidate new state (same shape and dtype).
      rate: zoneout probability in ``[0, 1]``.
      deterministic, impl: as in :func:`jdrop.dropout`.

    Returns:
      The new hidden state.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> h = zoneout(jax.random.key(0), jnp.zeros(6), jnp.ones(6), 0.5)
      >>> sorted(set(h.tolist()))
      [0.0, 1.0]
      >>> zoneout(None, jnp.zeros(2), jnp.ones(2), 0.25, deterministic=True)
      Array([0.75, 0.75], dtype=float32)

    References:
      Krueger et al. "Zoneout". ICLR 2017.
    """
    h_prev = check_float_array(h_prev, "h_prev")
    h_new = check_float_array(h_new, "h_new")
    if h_prev.shape != h_new.shape or h_prev.dtype != h_new.dtype:
        raise ValueError(
            f"h_prev and h_new must match, got {h_prev.shape} {h_prev.dtype} and "
            f"{h_new.shape} {h_new.dtype}"
        )
    concrete_rate(rate)
    if deterministic:
        dtype = compute_dtype(h_new.dtype)
        r = jax.lax.stop_gradient(jnp.asarray(rate)).astype(dtype)
        h = (r * h_prev.astype(dtype) + (1 - r) * h_new.astype(dtype)).astype(h_new.dtype)
        return poison_invalid_rate(h, rate)
    require_key(key, deterministic, "zoneout")
    update = keep_mask(key, h_new.shape, rate, impl=impl)
    return poison_invalid_rate(jnp.where(update, h_new, h_prev), rate)


def _is_matrix(path, leaf) -> bool:
    del path
    return getattr(leaf, "ndim", 0) >= 2


def weight_drop(
    key,
    weights,
    rate,
    *,
    select: Callable[[tuple, jax.Array], bool] = _is_matrix,
    deterministic: bool = False,
    impl: str = "counter",
):
    r"""Weight drop: DropConnect on the selected weight matrices of a pytree.

    :math:`W' = M \odot W / (1 - p)` with :math:`M \sim \mathrm{Bernoulli}(1 - p)` per
    weight (:math:`p` = ``rate``), as :func:`jdrop.dropconnect` (Merity et al. 2018).

    Apply once per forward pass (before the ``lax.scan`` over time), so the same dropped
    hidden-to-hidden weights serve every time step. Each selected leaf gets its own key,
    ``fold_in(key, leaf_index)``.

    Args:
      key: PRNG key (``None`` allowed when deterministic).
      weights: an array or a pytree of arrays (e.g. ``{"w_hh": ...}``).
      rate: drop probability per weight.
      select: ``select(path, leaf) -> bool`` picks the leaves to drop; default: every leaf
        with at least 2 dimensions (matrices, not biases).
      deterministic, impl: as in :func:`jdrop.dropout`.

    Returns:
      A pytree like ``weights``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> w = {"w_hh": jnp.ones((4, 4)), "b": jnp.ones(4)}
      >>> out = weight_drop(jax.random.key(0), w, 0.5)
      >>> bool((out["b"] == 1).all()), sorted(set(out["w_hh"].ravel().tolist()))
      (True, [0.0, 2.0])

    References:
      Merity, Keskar, Socher. "Regularizing and Optimizing LSTM Language Models". ICLR 2018.
      Wan et al. "Regularization of Neural Networks using DropConnect". ICML 2013.
    """
    concrete_rate(rate)
    if deterministic:
        return weights
    require_key(key, deterministic, "weight_drop")
    key = as_key(key)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(weights)
    out = [
        dropconnect(jax.random.fold_in(key, index), leaf, rate, impl=impl)
        if select(path, leaf)
        else leaf
        for index, (path, leaf) in enumerate(leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)
