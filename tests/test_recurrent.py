"""Recurrent dropout: locked masks, word-type dropout, zoneout, weight drop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdrop


def test_locked_dropout_same_mask_every_step(key):
    y = jdrop.locked_dropout(key, jnp.ones((4, 7, 16)), 0.5)
    assert (y == y[:, :1]).all()
    assert not (y[0] == y[1]).all()  # different examples, different masks
    y_tm = jdrop.locked_dropout(key, jnp.ones((7, 4, 16)), 0.5, time_axis=0)
    assert (y_tm == y_tm[:1]).all()


def test_embedding_dropout_drops_word_types(key):
    vocab, dim = 50, 8
    table = jax.random.normal(jax.random.key(1), (vocab, dim))
    ids = jax.random.randint(jax.random.key(2), (16, 30), 0, vocab)
    y = np.asarray(jdrop.embedding_dropout(key, ids, table, 0.5))
    dropped = (y == 0).all(-1)
    ids = np.asarray(ids)
    for word in np.unique(ids):
        states = dropped[ids == word]
        assert states.all() or not states.any()  # a word is dropped everywhere or nowhere
    kept = ~dropped
    np.testing.assert_allclose(y[kept], 2 * np.asarray(table)[ids[kept]], rtol=1e-6)
    assert 0 < dropped.mean() < 1


def test_embedding_dropout_bad_input(key):
    with pytest.raises(TypeError, match="ids.dtype"):
        jdrop.embedding_dropout(key, jnp.ones(3), jnp.ones((4, 2)), 0.1)
    with pytest.raises(ValueError, match="embedding.shape"):
        jdrop.embedding_dropout(key, jnp.ones(3, jnp.int32), jnp.ones(4), 0.1)


def test_zoneout_keeps_previous_values(key):
    prev, new = jnp.zeros(1 << 16), jnp.ones(1 << 16)
    h = np.asarray(jdrop.zoneout(key, prev, new, 0.3))
    assert set(np.unique(h).tolist()) == {0.0, 1.0}
    assert abs((h == 0).mean() - 0.3) < 6 * np.sqrt(0.21 / (1 << 16))
    h_test = jdrop.zoneout(None, prev, new, 0.3, deterministic=True)
    np.testing.assert_allclose(h_test, 0.7, rtol=1e-6)
    with pytest.raises(ValueError, match="h_prev and h_new"):
        jdrop.zoneout(key, jnp.zeros(3), jnp.zeros(4), 0.3)


def test_zoneout_gradients_flow_to_the_chosen_state(key):
    prev, new = jnp.zeros(256), jnp.ones(256)
    g_prev, g_new = jax.grad(lambda a, b: jdrop.zoneout(key, a, b, 0.5).sum(), (0, 1))(prev, new)
    np.testing.assert_array_equal(np.asarray(g_prev) + np.asarray(g_new), np.ones(256))


def test_weight_drop_independent_keys_per_leaf(key):
    w = {"w_hh_0": jnp.ones((32, 32)), "w_hh_1": jnp.ones((32, 32)), "bias": jnp.ones(32)}
    out = jdrop.weight_drop(key, w, 0.5)
    assert not np.array_equal(out["w_hh_0"] == 0, out["w_hh_1"] == 0)
    np.testing.assert_array_equal(out["bias"], w["bias"])
    only = jdrop.weight_drop(key, w, 0.5, select=lambda path, leaf: "1" in str(path))
    np.testing.assert_array_equal(only["w_hh_0"], w["w_hh_0"])
    assert jdrop.weight_drop(None, w, 0.5, deterministic=True) is w
