"""GRU sequence classifier for MNIST-1D: shapes, the baseline's size, dropout, learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models import param_count
from jdrop.models._rnn_classifier import GRUClassifier


def test_shapes_for_both_input_layouts():
    x = jax.random.normal(jax.random.key(0), (5, 40))
    apply = nnx.jit(lambda m, x: m(x, deterministic=True))
    model = GRUClassifier(rngs=nnx.Rngs(0))
    flat, channel = apply(model, x), apply(model, x[..., None])
    assert flat.shape == (5, 10) and flat.dtype == jnp.float32
    np.testing.assert_array_equal(flat, channel)


def test_default_matches_the_mnist1d_gru_baseline_size():
    # Greydanus (2020): bidirectional torch.nn.GRU(1, 6), then Linear(2 * 6 * 40, 10).
    # Per direction 3H(in + H) + 2 * 3H parameters (two biases, as in PyTorch).
    hidden, steps = 6, 40
    gru = 2 * (3 * hidden * (1 + hidden) + 2 * 3 * hidden)
    readout = 2 * hidden * steps * 10 + 10
    model = nnx.eval_shape(lambda: GRUClassifier(rngs=nnx.Rngs(0)))
    assert param_count(model) == gru + readout


def test_inference_is_deterministic_and_keys_draw_dropout():
    model = GRUClassifier(rngs=nnx.Rngs(0), recurrent_dropout=0.3, dropout=0.3)
    x = jax.random.normal(jax.random.key(0), (4, 40))
    apply = nnx.jit(lambda m, x, key: m(x, key=key, deterministic=key is None))
    np.testing.assert_array_equal(apply(model, x, None), apply(model, x, None))
    a, b = apply(model, x, jax.random.key(1)), apply(model, x, jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, apply(model, x, jax.random.key(2)))
    assert not np.allclose(a, apply(model, x, None))


def test_backward_direction_reads_the_reversed_signal():
    # With both directions sharing weights and a readout symmetric in the two halves,
    # reversing the signal swaps the halves of the features: the logits are unchanged,
    # while a single direction sees a different sequence.
    model = GRUClassifier(rngs=nnx.Rngs(0), readout="last", hidden_size=4)
    for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
        getattr(model.cells[1], name)[...] = getattr(model.cells[0], name)[...]
    kernel = model.kernel[...]
    model.kernel[...] = jnp.concatenate([kernel[:4], kernel[:4]], axis=0)
    x = jax.random.normal(jax.random.key(0), (3, 40))
    apply = nnx.jit(lambda m, x: m(x, deterministic=True))
    np.testing.assert_allclose(apply(model, x), apply(model, x[:, ::-1]), rtol=1e-5, atol=1e-6)
    one_way = GRUClassifier(rngs=nnx.Rngs(0), readout="last", hidden_size=4, bidirectional=False)
    assert not np.allclose(apply(one_way, x), apply(one_way, x[:, ::-1]))


def test_learns_a_toy_task():
    # Class = sign of the signal's mean: a few full-batch Adam-like steps must fit it.
    x = jax.random.normal(jax.random.key(0), (64, 40)) + jnp.where(
        jnp.arange(64)[:, None] % 2 == 0, 0.5, -0.5
    )
    labels = (jnp.arange(64) % 2).astype(jnp.int32)
    model = GRUClassifier(rngs=nnx.Rngs(0), num_classes=2, hidden_size=8, readout="last")

    def loss_fn(m):
        logits = m(x, deterministic=True)  # no dropout in this model
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], 1).mean()

    @nnx.jit
    def step(m):
        loss, grads = nnx.value_and_grad(loss_fn)(m)
        params = nnx.state(m, nnx.Param)
        nnx.update(m, jax.tree.map(lambda p, g: p - 0.5 * g, params, grads))
        return loss

    losses = [float(step(model)) for _ in range(60)]
    assert losses[-1] < 0.5 * losses[0]


def test_bad_inputs_raise():
    model = GRUClassifier(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="x must be"):
        model(jnp.ones((2, 39)))
    with pytest.raises(TypeError, match="floating"):
        model(jnp.ones((2, 40), jnp.int32))
    with pytest.raises(ValueError, match="readout"):
        GRUClassifier(rngs=nnx.Rngs(0), readout="mean")
