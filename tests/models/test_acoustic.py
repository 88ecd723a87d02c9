"""jdrop.models acoustic models: the log-mel CNN and the (bi)directional GRU/LSTM."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models._acoustic import AcousticCNN, AcousticRNN

X = jax.random.normal(jax.random.key(0), (3, 16, 8))


def test_cnn_shapes_modes_and_placements():
    model = AcousticCNN(16, 8, rngs=nnx.Rngs(0), channels=(4, 8), hidden=16, dropout=0.5,
                        conv_dropout=0.3, spec_augment=dict(num_time_masks=1, max_time_width=4))
    k = jax.random.key(1)
    train = model(X, key=k)
    assert train.shape == (3, 10) and train.dtype == jnp.float32
    np.testing.assert_array_equal(train, model(X, key=k))  # same key, same masks
    assert not np.allclose(train, model(X, key=jax.random.key(2)))
    infer = model(X, deterministic=True)
    model.eval()
    np.testing.assert_array_equal(model(X), infer)
    model.train()
    with pytest.raises(ValueError, match="PRNG key"):
        model(X)
    plain = AcousticCNN(16, 8, rngs=nnx.Rngs(0), channels=(4, 8), hidden=16)
    np.testing.assert_allclose(plain(X, key=k), infer, rtol=1e-6)  # same init, no dropout


def test_cnn_standard_vs_spatial_conv_dropout():
    for kind in ("spatial", "standard"):
        model = AcousticCNN(16, 8, rngs=nnx.Rngs(0), channels=(4,), conv_dropout=0.5,
                            conv_dropout_kind=kind)
        assert model(X, key=jax.random.key(0)).shape == (3, 10)


def test_cnn_errors_name_the_argument():
    with pytest.raises(ValueError, match="dropout"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0), dropout=1.5)
    with pytest.raises(ValueError, match="conv_dropout_kind"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0), conv_dropout_kind="block")
    with pytest.raises(ValueError, match="n_frames and n_mels"):
        AcousticCNN(2, 8, rngs=nnx.Rngs(0), channels=(4, 4))
    with pytest.raises(ValueError, match="spec_augment has unknown"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0), spec_augment=dict(warp=3))
    with pytest.raises(ValueError, match="x.shape"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0))(jnp.zeros((3, 15, 8)), deterministic=True)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("readout", ["mean", "last", "sequence"])
def test_rnn_readouts_and_cells(cell, readout):
    model = AcousticRNN(8, 11, rngs=nnx.Rngs(0), cell=cell, hidden_size=6, num_layers=2,
                        readout=readout, subsample=2, input_dropout=0.2, recurrent_dropout=0.3,
                        output_dropout=0.1)
    out = model(X, key=jax.random.key(3))
    assert out.shape == ((3, 8, 11) if readout == "sequence" else (3, 11))
    det = model(X, deterministic=True)
    assert det.shape == out.shape and not np.allclose(det, out)


def test_rnn_backward_direction_reads_the_sequence_backwards():
    model = AcousticRNN(8, 4, rngs=nnx.Rngs(0), hidden_size=5, readout="sequence")
    uni = AcousticRNN(8, 4, rngs=nnx.Rngs(0), hidden_size=5, readout="last",
                      bidirectional=False)
    out = model(X, deterministic=True)
    # changing the last frame changes the backward state at t=0 but not the forward one there
    x2 = X.at[:, -1].add(1.0)
    out2 = model(x2, deterministic=True)
    assert not np.allclose(out[:, 0], out2[:, 0])
    assert uni(X, deterministic=True).shape == (3, 4)


def test_rnn_recurrent_dropout_is_variational_and_spec_augment_applies():
    model = AcousticRNN(8, rngs=nnx.Rngs(0), hidden_size=6, recurrent_dropout=0.5,
                        spec_augment=dict(num_freq_masks=2, max_freq_width=3))
    a = model(X, key=jax.random.key(5))
    np.testing.assert_array_equal(a, model(X, key=jax.random.key(5)))
    with pytest.raises(ValueError, match="PRNG key"):
        model(X)
    with pytest.raises(ValueError, match="cell"):
        AcousticRNN(8, rngs=nnx.Rngs(0), cell="rnn")
    with pytest.raises(ValueError, match="readout"):
        AcousticRNN(8, rngs=nnx.Rngs(0), readout="max")
    with pytest.raises(ValueError, match="recurrent_dropout"):
        AcousticRNN(8, rngs=nnx.Rngs(0), recurrent_dropout=-0.1)


@pytest.mark.parametrize("make", [
    lambda **kw: AcousticCNN(16, 8, rngs=nnx.Rngs(0), **kw),
    lambda **kw: AcousticRNN(8, rngs=nnx.Rngs(0), hidden_size=6, **kw),
])
def test_vtlp_warps_the_input_while_training_only(make):
    spec = dict(num_time_masks=1, max_time_width=3)
    plain, warped = make(spec_augment=spec), make(spec_augment=spec, vtlp=dict(sample_rate=8000))
    key = jax.random.key(4)
    assert not np.allclose(plain(X, key=key), warped(X, key=key))
    np.testing.assert_array_equal(plain(X, deterministic=True), warped(X, deterministic=True))
    np.testing.assert_array_equal(warped(X, key=key), warped(X, key=key))
    # with max_warp 0 the warp is the identity and SpecAugment gets the rest of the key
    still = make(spec_augment=spec, vtlp=dict(sample_rate=8000, max_warp=0.0))
    assert not np.allclose(plain(X, key=key), still(X, key=key))  # masks from a split key
    none = make(vtlp=dict(sample_rate=8000, max_warp=0.0))
    np.testing.assert_allclose(none(X, key=key), make()(X, key=key), atol=1e-5)


def test_vtlp_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match="sample_rate"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0), vtlp=dict(max_warp=0.1))
    with pytest.raises(ValueError, match="vtlp needs"):
        AcousticRNN(8, rngs=nnx.Rngs(0), vtlp=dict(sample_rate=8000, alpha=1.1))
    with pytest.raises(TypeError, match="vtlp must be a dict"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0), vtlp=1.1)
    with pytest.raises(ValueError, match="fmax"):
        AcousticCNN(16, 8, rngs=nnx.Rngs(0), vtlp=dict(sample_rate=8000, fmax=5000.0))


def test_pure_apply_vmaps_over_stacked_initialisations_and_trains():
    """Seeds/folds as a batch: init under vmap, apply under vmap, gradients flow."""
    make = lambda k: AcousticRNN(8, 4, rngs=nnx.Rngs(k), hidden_size=6, recurrent_dropout=0.2)
    graphdef, _ = nnx.split(make(jax.random.key(0)))
    params = jax.vmap(lambda k: nnx.split(make(k))[1])(jax.random.split(jax.random.key(1), 3))

    def loss(p, key):
        logits = nnx.merge(graphdef, p)(X, key=key)
        return -jax.nn.log_softmax(logits)[:, 0].mean()

    keys = jax.random.split(jax.random.key(2), 3)
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(loss)))(params, keys)
    assert values.shape == (3,) and len(set(np.asarray(values).round(6).tolist())) == 3
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
