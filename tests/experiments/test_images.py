"""``experiments._images``: the trainer and results note of the Fashion-MNIST experiments."""

import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import _images as im
from experiments.regularizers import config as configs


def test_run_note_names_config_time_load_and_command(monkeypatch):
    monkeypatch.setattr(im.sys, "argv", ["x", "--workdir", "/tmp/reg", "--num_epochs", "3"])
    monkeypatch.setattr(im.os, "getloadavg", lambda: (1.3, 0.5, 0.25))
    note = im.run_note("regularizers", configs.smoke(), 90.0)
    config = json.loads(re.search(r"\((\{.*\})\)", note).group(1))
    assert config["name"] == "smoke" and config["hidden"] == [16]
    assert "wall time of this invocation 1.5 min" in note
    assert "1-minute load average 1.3 at its end" in note
    assert note.endswith("(`python -m experiments.regularizers --workdir /tmp/reg "
                         "--num_epochs 3`).")


def test_models_axes_train_the_same_cnns(synthetic_images):
    """vmap, lax.map and the host loop of one compiled step: the same models (same keys)."""
    data = synthetic_images(64, 32, 3)
    hp = {"hid_rate": [0.5, 0.3], "conv_rate": [0.1, 0.2], "shift": [1, 1], "l2": [1e-4, 0.0]}
    hypers = im.full_hypers(hp)
    keys = jax.random.split(jax.random.key(0), 2)
    init = functools.partial(im.init_cnn, channels=(2, 3), hidden=8)
    apply_fn = functools.partial(im.cnn_apply, ops=("conv",))
    states = {}
    for axis in ("vmap", "map", "host"):
        spec = im.TrainSpec(steps_per_epoch=3, num_epochs=2, batch_size=8, models_axis=axis,
                            schedule="cosine", eval_examples=32)
        trainer = im.Trainer(apply_fn, data, spec)
        state = trainer.init_state(jax.vmap(init)(keys))
        for epoch in range(2):
            state = trainer.epoch(state, hypers, keys, epoch)
        states[axis] = state["params"]
    first = jax.tree.leaves(states["host"])
    assert not np.allclose(first[0][0], jax.tree.leaves(jax.vmap(init)(keys))[0][0])
    for axis in ("vmap", "map"):
        for a, b in zip(jax.tree.leaves(states[axis]), first, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=axis)


def test_unknown_models_axis_is_named(synthetic_images):
    spec = im.TrainSpec(steps_per_epoch=1, num_epochs=1, models_axis="pmap")
    with pytest.raises(ValueError, match="models_axis must be .* got 'pmap'"):
        im.Trainer(im.mlp_apply, synthetic_images(64, 32, 3), spec)


def test_conv_models_axis_is_the_host_loop_on_cpu():
    assert im.conv_models_axis() == ("host" if jax.default_backend() == "cpu" else "map")


def test_clip_by_global_norm():
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[0.0, 4.0]])}  # global norm 5
    clipped = im._clip_by_global_norm(grads, 1.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[0.0, 0.8]], rtol=1e-6)
    same = im._clip_by_global_norm(grads, jnp.inf)
    assert all((same[k] == grads[k]).all() for k in grads)  # inf: bitwise unchanged
    assert (im._clip_by_global_norm(grads, 10.0)["a"] == grads["a"]).all()


def test_mirror_flips_with_the_given_probability():
    images = jax.random.uniform(jax.random.key(0), (400, 28, 28, 1))
    key = jax.random.key(1)
    np.testing.assert_array_equal(im.mirror(key, images, 0.0), images)
    np.testing.assert_array_equal(im.mirror(key, images, 1.0), images[:, :, ::-1, :])
    half = im.mirror(key, images, jnp.float32(0.5))  # traced rates work like floats
    flipped = np.all(np.asarray(half) == np.asarray(images[:, :, ::-1, :]), axis=(1, 2, 3))
    kept = np.all(np.asarray(half) == np.asarray(images), axis=(1, 2, 3))
    assert np.all(flipped ^ kept) and 150 < flipped.sum() < 250


def test_vgg_style_cnn_pools_after_each_stage():
    """``depth=2, kernel=3``: two 3x3 convolutions per stage, one 2x2 pool per stage."""
    params = im.init_cnn(jax.random.key(0), channels=(4, 6), hidden=8, kernel=3, depth=2)
    assert [p["w"].shape for p in params[:4]] == [(3, 3, 1, 4), (3, 3, 4, 4), (3, 3, 4, 6),
                                                  (3, 3, 6, 6)]
    assert params[4]["w"].shape == (7 * 7 * 6, 8)  # 28 -> 14 -> 7: two pools, not four
    x = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1))
    hp = im.full_hypers({"hid_rate": [0.0]})
    hp = jax.tree.map(lambda v: v[0], hp)
    logits = im.cnn_apply(params, x, None, hp, False, depth=2)
    assert logits.shape == (5, 10)
    with pytest.raises(TypeError):  # a pool after every convolution leaves 1x1, not 7x7
        im.cnn_apply(params, x, None, hp, False, depth=1)
    with pytest.raises(ValueError, match="depth=0"):
        im.init_cnn(jax.random.key(0), depth=0)
