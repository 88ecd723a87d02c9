"""TransformerSeq2Seq: shapes, the call convention, every dropout site, padding masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jdrop.models import TransformerSeq2Seq, param_count, sinusoidal_positions

V = 23
SRC = jnp.array([[5, 6, 7, 8, 2, 0], [9, 10, 2, 0, 0, 0]], jnp.int32)
TGT = jnp.array([[1, 11, 12, 13, 14], [1, 15, 16, 0, 0]], jnp.int32)


def small(**kwargs):
    settings = dict(features=16, num_heads=2, ffn_features=32, encoder_layers=2,
                    decoder_layers=2, max_length=12, embedding_dropout=0.0,
                    residual_dropout=0.0, attention_dropout=0.0, ffn_dropout=0.0)
    settings.update(kwargs)
    return TransformerSeq2Seq(V, rngs=nnx.Rngs(0), **settings)


def call(model, src=SRC, tgt=TGT, **kwargs):
    return model(src, tgt, source_mask=src > 0, target_mask=tgt > 0, **kwargs)


def test_shapes_and_training_needs_a_key():
    model = small(residual_dropout=0.1)
    logits = call(model, key=jax.random.key(0))
    assert logits.shape == (2, 5, V) and logits.dtype == jnp.float32
    with pytest.raises(ValueError, match="deterministic=True"):
        call(model)
    model.eval()
    assert call(model).shape == (2, 5, V)
    model.train()
    with pytest.raises(ValueError, match="no PRNG key"):
        call(model)


@pytest.mark.parametrize("site", ["embedding_dropout", "residual_dropout",
                                  "attention_dropout", "ffn_dropout"])
def test_each_dropout_site_acts_in_training_only(site):
    model = small(**{site: 0.3})
    a, b = call(model, key=jax.random.key(0)), call(model, key=jax.random.key(1))
    assert not jnp.allclose(a, b)
    np.testing.assert_array_equal(call(model, key=jax.random.key(0)), a)  # same key, same masks
    reference = call(small(), deterministic=True)  # same weights, no dropout
    np.testing.assert_allclose(call(model, deterministic=True), reference, atol=1e-6)


def test_rates_reach_the_blocks():
    model = small(residual_dropout=0.1, attention_dropout=0.2, ffn_dropout=0.3)
    for block in (*model.encoder, *model.decoder):
        assert block.residual_dropout == 0.1
        assert block.attention.dropout_rate == 0.2
        assert block.ffn.dropout_rate == 0.3
    for block in model.decoder:
        assert block.cross.dropout_rate == 0.2


def test_no_dropout_ignores_the_key():
    model = small()
    np.testing.assert_allclose(call(model, key=jax.random.key(3)),
                               call(model, deterministic=True), atol=1e-6)


def test_source_padding_changes_nothing():
    model = small()
    reference = call(model, deterministic=True)
    wider = jnp.pad(SRC, ((0, 0), (0, 4)))  # four more padding columns
    np.testing.assert_allclose(call(model, src=wider, deterministic=True), reference, atol=1e-5)
    # garbage under the padding is masked out of the encoder and the cross-attention
    noisy = jnp.where(SRC > 0, SRC, 7)
    out = model(noisy, TGT, source_mask=SRC > 0, target_mask=TGT > 0, deterministic=True)
    np.testing.assert_allclose(out, reference, atol=1e-5)


def test_target_padding_and_causality():
    model = small()
    reference = call(model, deterministic=True)
    changed = TGT.at[:, 3:].set(4)  # later target positions: earlier logits unchanged
    out = model(SRC, changed, source_mask=SRC > 0, target_mask=TGT > 0, deterministic=True)
    np.testing.assert_allclose(out[:, :3], reference[:, :3], atol=1e-5)
    assert not jnp.allclose(out[0, 3:], reference[0, 3:])


def test_rows_are_independent():
    model = small()
    both = call(model, deterministic=True)
    one = call(model, src=SRC[1:, :3], tgt=TGT[1:, :3], deterministic=True)
    np.testing.assert_allclose(one, both[1:, :3], atol=1e-5)


def test_tied_embeddings_and_param_count():
    tied, untied = small(), small(tie_embeddings=False)
    assert tied.output_kernel is None
    assert param_count(untied) - param_count(tied) == 16 * V


def test_sinusoids():
    pe = sinusoidal_positions(10, 8)
    np.testing.assert_allclose(pe[3, 0], np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(pe[3, 1], np.cos(3.0), rtol=1e-6)
    np.testing.assert_allclose(pe[3, 2], np.sin(3.0 / 10000 ** (2 / 8)), rtol=1e-6)


def test_pure_apply_and_vmap_over_keys():
    from jdrop.nn import pure_apply

    model = small(residual_dropout=0.2)
    apply_fn, state = pure_apply(model)
    keys = jax.random.split(jax.random.key(0), 3)
    out = jax.vmap(lambda k: apply_fn(state, k, SRC, TGT, source_mask=SRC > 0,
                                      target_mask=TGT > 0))(keys)
    assert out.shape == (3, 2, 5, V)
    np.testing.assert_allclose(out[1], call(model, key=keys[1]), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(features=15), "divisible by num_heads"),
        (dict(residual_dropout=1.0), "residual_dropout"),
        (dict(attention_dropout=-0.1), "attention_dropout"),
        (dict(encoder_layers=0), "encoder_layers"),
    ],
)
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small(**kwargs)


def test_bad_calls():
    model = small()
    with pytest.raises(TypeError, match="source must be integer"):
        model(SRC.astype(jnp.float32), TGT, deterministic=True)
    with pytest.raises(ValueError, match="source_mask must have the shape"):
        model(SRC, TGT, source_mask=SRC[:, :3] > 0, deterministic=True)
    with pytest.raises(ValueError, match="max_length=12"):
        model(jnp.ones((1, 13), jnp.int32), TGT[:1], deterministic=True)
    memory = model.encode(SRC, SRC > 0, deterministic=True)
    with pytest.raises(ValueError, match="init_cache"):
        model.decode(TGT[:, :1], memory, SRC > 0, deterministic=True, decode=True)
    with pytest.raises(ValueError, match="max_length"):
        model.init_cache(2, 13)
