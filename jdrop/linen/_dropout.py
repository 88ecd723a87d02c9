"""A ``flax.linen`` dropout module that draws its masks with :func:`jdrop.dropout`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from jdrop._dropout import dropout
from jdrop._validation import concrete_rate

__all__ = ["Dropout"]


class Dropout(nn.Module):
    r"""Dropout for linen models: ``flax.linen.Dropout``'s signature, jdrop's masks.

    :math:`y = m \odot x / (1 - p)`, :math:`m \sim \mathrm{Bernoulli}(1 - p)` (:math:`p` =
    ``rate``; shared along ``broadcast_dims``) when not deterministic, :math:`y = x`
    otherwise. The key is the call's
    ``rng``, else ``self.make_rng(rng_collection)``: pass ``rngs={"dropout": key}`` to
    ``apply`` as with Flax's own layer (at ``rate == 0`` none is drawn, as in Flax).
    ``deterministic`` is merged from the attribute and the call argument
    (``nn.merge_param``: exactly one of them must be given).

    Attributes:
      rate: drop probability in ``[0, 1]`` (not the keep rate).
      broadcast_dims: axes sharing one mask value.
      deterministic: ``True`` for inference; ``None`` to take it from the call.
      rng_collection: the rng collection drawn from.
      inverted: scale at train time (default); ``False`` scales by ``1 - rate`` at test.
      impl: ``"counter"`` (default) or ``"jax"``, see :func:`jdrop.keep_mask`.
      regenerate_mask: recompute the mask in the backward pass instead of storing it.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> layer = Dropout(0.5)
      >>> x = jnp.ones((2, 4))
      >>> y = layer.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
      >>> sorted(set(y.ravel().tolist()))
      [0.0, 2.0]
      >>> layer.apply({}, x, deterministic=True).tolist()
      [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]

    References:
      Srivastava et al. "Dropout: A Simple Way to Prevent Neural Networks from
      Overfitting". JMLR 2014.
    """

    rate: float
    broadcast_dims: Sequence[int] = ()
    deterministic: bool | None = None
    rng_collection: str = "dropout"
    inverted: bool = True
    impl: str = "counter"
    regenerate_mask: bool = False

    @nn.compact
    def __call__(self, inputs, deterministic: bool | None = None, rng: jax.Array | None = None):
        """Masks ``inputs`` unless deterministic.

        Args:
          inputs: the array to drop from.
          deterministic: overrides nothing: exactly one of this and the attribute is given.
          rng: a key to use instead of ``self.make_rng(self.rng_collection)``.

        Returns:
          The masked, rescaled inputs (the inputs themselves when deterministic).
        """
        deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        # as flax.linen.Dropout: no rng is drawn at rate 0; a traced rate (None here) is
        # handled by jdrop.dropout (NaN output when invalid), not refused while tracing
        if concrete_rate(self.rate) == 0.0:
            return inputs
        key = None
        if not deterministic:
            key = self.make_rng(self.rng_collection) if rng is None else rng
        return dropout(
            key, inputs, self.rate, broadcast_dims=tuple(self.broadcast_dims),
            deterministic=deterministic, inverted=self.inverted, impl=self.impl,
            regenerate_mask=self.regenerate_mask,
        )
