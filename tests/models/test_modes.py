"""Every model: training without a key raises; inference is deterministic=True or eval()."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models import (
    MLP,
    MNIST1DCNN,
    AlexNet,
    GRUClassifier,
    LeNet,
    LMConfig,
    ResNet,
    RNNLanguageModel,
)

MODELS = {
    "mlp": (lambda r: MLP(8, (16,), 3, input_rate=0.2, hidden_rate=0.5, rngs=r), (4, 8)),
    "lenet": (lambda r: LeNet(image_size=16, features=(4, 8), hidden=16, conv_rate=0.3, rngs=r),
              (2, 16, 16, 1)),
    "alexnet": (lambda r: AlexNet(variant="cifar", image_size=16, width=0.125, fc_features=32,
                                  rngs=r), (2, 16, 16, 3)),
    "mnist1d_cnn": (lambda r: MNIST1DCNN(conv_rate=0.2, head_rate=0.5, rngs=r), (2, 40)),
    "resnet": (lambda r: ResNet((1, 1), widths=(4, 8), head_rate=0.5, block_rate=0.3, rngs=r),
               (2, 8, 8, 3)),
    "gru_classifier": (lambda r: GRUClassifier(rngs=r, dropout=0.3, recurrent_dropout=0.3),
                       (2, 40)),
    "rnn_lm": (lambda r: RNNLanguageModel(LMConfig(vocab_size=13, embed_size=6, hidden_sizes=(8,),
                                                   input_dropout=0.3, embedding_dropout=0.2),
                                          rngs=r), None),
}


def _build(name):
    build, shape = MODELS[name]
    model = build(nnx.Rngs(0))
    if shape is None:
        x = jax.random.randint(jax.random.key(1), (2, 5), 0, 13)
    else:
        x = jax.random.normal(jax.random.key(1), shape)

    def run(**kwargs):
        out = model(x, **kwargs)
        return out[0] if isinstance(out, tuple) else out

    return model, run


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_without_a_key_raises(name):
    model, run = _build(name)
    assert model.deterministic is False
    with pytest.raises(ValueError, match=r"no PRNG key.*deterministic=True.*model\.eval\(\)"):
        run()
    with pytest.raises(ValueError, match="no PRNG key"):
        run(key=None, deterministic=False)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_inference_by_argument_or_eval(name, key):
    model, run = _build(name)
    expected = run(deterministic=True)
    np.testing.assert_array_equal(run(key=key, deterministic=True), expected)
    training = run(key=key)
    assert not np.allclose(training, expected)
    model.eval()
    modes = [m.deterministic for _, m in nnx.iter_graph(model) if hasattr(m, "deterministic")]
    assert modes and all(modes)  # the model and every dropout layer in it
    np.testing.assert_array_equal(run(), expected)
    np.testing.assert_array_equal(run(key=key), expected)
    np.testing.assert_array_equal(run(key=key, deterministic=False), training)  # call wins
    model.train()
    np.testing.assert_array_equal(run(key=key), training)
    with pytest.raises(ValueError, match="no PRNG key"):
        run()


def test_deterministic_at_construction():
    x = jnp.ones((2, 40))
    cnn = MNIST1DCNN(conv_rate=0.2, head_rate=0.5, deterministic=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(cnn(x), cnn(x, deterministic=True))
    mlp = MLP(40, (8,), 3, deterministic=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(mlp(x), mlp(x, deterministic=True))
    assert not np.allclose(mlp(x, key=jax.random.key(0), deterministic=False), mlp(x))
