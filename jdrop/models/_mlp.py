"""Fully connected dropout networks: the MLP of Srivastava et al. (2014) and MNIST-1D's MLP.

``x -> flatten -> dropout(input_rate) -> [dense -> act -> dropout(hidden_rate)] * L
-> dense``, with a separate drop rate per position. With max-norm
(:func:`jdrop.train._maxnorm.max_norm`) this is the paper's MNIST network.

References:
  Srivastava, Hinton, Krizhevsky, Sutskever, Salakhutdinov. "Dropout: A Simple Way to
  Prevent Neural Networks from Overfitting". JMLR 2014.
  Greydanus, Kobak. "Scaling Down Deep Learning with MNIST-1D". ICML 2024.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from flax import nnx

from jdrop.models._common import call_optional, optional_dropout, per_layer
from jdrop.nn._mode import StochasticModule, layer_keys

__all__ = ["MLP", "mnist1d_mlp"]


class MLP(StochasticModule):
    """A multilayer perceptron with dropout on its input and after every hidden layer.

    Defaults are the paper's MNIST network 784-1024-1024-2048-10, ReLU, input dropout 0.2
    and hidden dropout 0.5. Inputs of any shape ``(N, ...)`` are flattened.

    Args:
      in_features: the flattened input size.
      hidden: the hidden layer sizes.
      num_classes: the number of logits.
      input_rate: drop probability on the input.
      hidden_rate: drop probability after each hidden layer (a float, or one per layer).
      activation: the hidden nonlinearity.
      deterministic: the default mode (``False``: training); ``model.eval()`` sets it.
      rngs: ``nnx.Rngs`` for parameter initialisation.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = MLP(784, rngs=nnx.Rngs(0))
      >>> model(jnp.ones((2, 28, 28, 1)), key=jax.random.key(1)).shape
      (2, 10)

    References:
      Srivastava et al. "Dropout". JMLR 2014, section 6.1.1 and appendix B.1.
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: Sequence[int] = (1024, 1024, 2048),
        num_classes: int = 10,
        *,
        input_rate: float = 0.2,
        hidden_rate: float | Sequence[float] = 0.5,
        activation: Callable[[jax.Array], jax.Array] = nnx.relu,
        deterministic: bool = False,
        rngs: nnx.Rngs,
    ):
        self.deterministic = deterministic
        hidden = tuple(hidden)
        rates = per_layer(hidden_rate, len(hidden), "hidden_rate")
        sizes = (in_features, *hidden)
        self.input_dropout = optional_dropout(input_rate)
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.dropouts = nnx.List([optional_dropout(r) for r in rates])
        self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)
        self.activation = activation

    def __call__(self, x, *, key=None, deterministic=None):
        """Logits ``(N, num_classes)``; ``key`` drives every dropout while training."""
        keys, det = layer_keys(self, key, deterministic, len(self.hidden) + 1)
        h = x.reshape(x.shape[0], -1)
        h = call_optional(self.input_dropout, h, keys[0], det)
        for layer, drop, k in zip(self.hidden, self.dropouts, keys[1:], strict=True):
            h = call_optional(drop, self.activation(layer(h)), k, det)
        return self.head(h)


def mnist1d_mlp(
    *,
    hidden: Sequence[int] = (100, 100),
    input_rate: float = 0.0,
    hidden_rate: float | Sequence[float] = 0.0,
    rngs: nnx.Rngs,
) -> MLP:
    """The MNIST-1D MLP baseline: 40-100-100-10, ReLU (15,210 parameters), dropout optional.

    Args:
      hidden: hidden layer sizes.
      input_rate: drop probability on the 40 input steps.
      hidden_rate: drop probability after each hidden layer.
      rngs: ``nnx.Rngs`` for parameter initialisation.

    Returns:
      An :class:`MLP` taking ``(N, 40)`` or ``(N, 40, 1)`` signals.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from flax import nnx
      >>> model = mnist1d_mlp(rngs=nnx.Rngs(0))
      >>> sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
      15210

    References:
      Greydanus, Kobak. "Scaling Down Deep Learning with MNIST-1D". ICML 2024.
    """
    return MLP(40, hidden, 10, input_rate=input_rate, hidden_rate=hidden_rate, rngs=rngs)
