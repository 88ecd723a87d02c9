"""A GRU sequence classifier for MNIST-1D (and any fixed-length 1-D signal).

The default reproduces the GRU baseline of the MNIST-1D paper (Greydanus 2020; ~91% test
accuracy reported, about 5k parameters): a bidirectional GRU with 6 hidden units reads the
40 samples one at a time, and a linear layer classifies the concatenation of every time
step's hidden states (``T * 2H = 480`` features)::

    h_fwd = GRU(x_1..x_T),   h_bwd = GRU(x_T..x_1)   (outputs kept in time order)
    logits = concat_t [h_fwd_t, h_bwd_t] W + b

Dropout: variational recurrent dropout (one mask per sequence and direction on ``h_{t-1}``
before the recurrent matmul, Gal & Ghahramani 2016) and dropout on the readout features.
``readout="last"`` classifies the final hidden states instead (``2H`` features).

References:
  Greydanus. "Scaling Down Deep Learning" (MNIST-1D). arXiv 2011.14439, 2020.
  Gal & Ghahramani. "A Theoretically Grounded Application of Dropout in Recurrent Neural
  Networks". NeurIPS 2016.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

import jdrop
from jdrop._validation import check_choice, check_float_array, check_rate
from jdrop.nn._cells import GRUCell
from jdrop.nn._mode import StochasticModule, layer_keys
from jdrop.nn._scan import scan_cell

__all__ = ["GRUClassifier"]

READOUTS = ("flatten", "last")


class GRUClassifier(StochasticModule):
    """(Bi)directional GRU over a 1-D signal, then a linear classifier.

    Args:
      seq_len: number of time steps ``T`` (40 for MNIST-1D).
      num_classes: output classes.
      rngs: NNX random streams for initialisation.
      hidden_size: GRU units per direction.
      in_features: features per time step (1 for a scalar signal).
      bidirectional: add a backward GRU.
      readout: ``"flatten"`` (all time steps, the paper's baseline) or ``"last"``.
      recurrent_dropout: variational dropout rate on the recurrent connection.
      dropout: dropout rate on the readout features.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.

    Raises:
      ValueError: bad ``readout`` or rates.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = GRUClassifier(rngs=nnx.Rngs(0), recurrent_dropout=0.1, dropout=0.2)
      >>> model(jnp.ones((4, 40)), deterministic=True).shape
      (4, 10)
      >>> model(jnp.ones((4, 40, 1)), key=jax.random.key(0)).dtype
      dtype('float32')
    """

    def __init__(
        self,
        seq_len: int = 40,
        num_classes: int = 10,
        *,
        rngs: nnx.Rngs,
        hidden_size: int = 6,
        in_features: int = 1,
        bidirectional: bool = True,
        readout: str = "flatten",
        recurrent_dropout: float = 0.0,
        dropout: float = 0.0,
        deterministic: bool = False,
    ):
        self.readout = check_choice(readout, "readout", READOUTS)
        self.recurrent_dropout = check_rate(recurrent_dropout, "recurrent_dropout")
        self.dropout = check_rate(dropout, "dropout")
        self.deterministic = deterministic
        self.seq_len = seq_len
        self.in_features = in_features
        directions = 2 if bidirectional else 1
        self.cells = nnx.List(
            [GRUCell(in_features, hidden_size, rngs=rngs) for _ in range(directions)]
        )
        width = directions * hidden_size * (seq_len if readout == "flatten" else 1)
        scale = 1.0 / math.sqrt(width)
        self.kernel = nnx.Param(
            jax.random.uniform(rngs.params(), (width, num_classes), jnp.float32, -scale, scale)
        )
        self.bias = nnx.Param(jnp.zeros((num_classes,), jnp.float32))

    def __call__(self, x: jax.Array, *, key=None, deterministic=None) -> jax.Array:
        """Class logits ``(N, num_classes)`` for ``x`` of shape ``(N, T)`` or ``(N, T, F)``.

        Args:
          x: the signals.
          key: PRNG key for dropout (required while training).
          deterministic: inference, no dropout (default: ``self.deterministic``).

        Raises:
          ValueError: wrong sequence length or feature count; training without ``key``.
        """
        x = check_float_array(x)
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3 or x.shape[1:] != (self.seq_len, self.in_features):
            raise ValueError(
                f"x must be (N, {self.seq_len}) or (N, {self.seq_len}, {self.in_features}), "
                f"got x.shape={x.shape}"
            )
        batch = x.shape[0]
        xt = jnp.swapaxes(x, 0, 1)
        keys, deterministic = layer_keys(self, key, deterministic, len(self.cells) + 1)
        features = []
        for direction, cell in enumerate(self.cells):
            keep = None
            if keys[direction] is not None and self.recurrent_dropout > 0:
                keep = jdrop.keep_mask(
                    keys[direction], (batch, cell.hidden_size), self.recurrent_dropout
                )
            state, hs = scan_cell(
                cell.make_step(),
                cell.init_state(batch, x.dtype),
                cell.project_inputs(xt),
                recurrent_keep=keep,
                recurrent_rate=self.recurrent_dropout,
                reverse=direction == 1,
            )
            if self.readout == "flatten":
                features.append(jnp.swapaxes(hs, 0, 1))  # (N, T, H)
            else:
                features.append(state[0][:, None])  # (N, 1, H)
        h = jnp.concatenate(features, axis=-1).reshape(batch, -1)
        if self.dropout > 0:
            h = jdrop.dropout(keys[-1], h, self.dropout, deterministic=deterministic)
        return h @ self.kernel[...] + self.bias[...]
