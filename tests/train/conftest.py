"""Tiny models, data and batch iterators shared by the training-loop tests."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jdrop

STEPS_PER_EPOCH = 4
BATCH = 16  # divisible by the 8 test devices


class DropoutMLP(nnx.Module):
    """Linear -> relu -> jdrop.dropout -> Linear."""

    def __init__(self, din=4, hidden=16, dout=3, rate=0.5, *, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, dout, rngs=rngs)
        self.rate = rate

    def __call__(self, x, key=None):
        h = jax.nn.relu(self.l1(x))
        h = jdrop.dropout(key, h, self.rate, deterministic=key is None)
        return self.l2(h)


class BatchNormMLP(nnx.Module):
    """Linear -> BatchNorm -> relu -> dropout -> Linear (batch statistics to carry)."""

    def __init__(self, din=4, hidden=16, dout=3, rate=0.3, *, rngs):
        self.l1 = nnx.Linear(din, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, momentum=0.5, rngs=rngs)
        self.l2 = nnx.Linear(hidden, dout, rngs=rngs)
        self.rate = rate

    def __call__(self, x, key=None, train=False):
        h = jax.nn.relu(self.bn(self.l1(x), use_running_average=not train))
        h = jdrop.dropout(key, h, self.rate, deterministic=key is None)
        return self.l2(h)


class TinyRNN(nnx.Module):
    """Embedding -> tanh RNN with dropout on the outputs -> Linear (a language model)."""

    def __init__(self, vocab=7, hidden=8, rate=0.25, *, rngs):
        self.embed = nnx.Embed(vocab, hidden, rngs=rngs)
        self.wx = nnx.Linear(hidden, hidden, rngs=rngs)
        self.wh = nnx.Linear(hidden, hidden, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(hidden, vocab, rngs=rngs)
        self.rate = rate

    def __call__(self, tokens, h, key=None):
        xs = self.wx(self.embed(tokens))  # (B, T, H)

        def cell(h, x):
            h = jnp.tanh(x + self.wh(h))
            return h, h

        h, hs = jax.lax.scan(cell, h, jnp.swapaxes(xs, 0, 1))
        hs = jnp.swapaxes(hs, 0, 1)
        hs = jdrop.dropout(key, hs, self.rate, deterministic=key is None)
        return self.out(hs), h


def lm_loss(model, batch, key, carry):
    """Next-token cross-entropy; the RNN state is the carry (stopped gradient: TBPTT)."""
    logits, h = model(batch["inputs"], jax.lax.stop_gradient(carry), key=key)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]).mean()
    return loss, ({}, h)


def make_classification_data(n=BATCH * STEPS_PER_EPOCH, din=4, classes=3, seed=0):
    w = np.random.default_rng(1234).normal(size=(din, classes)).astype(np.float32)
    x = np.random.default_rng(seed).normal(size=(n, din)).astype(np.float32)
    return {"inputs": x, "labels": np.argmax(x @ w, axis=1).astype(np.int32)}


def make_batches_fn(data, batch=BATCH, seed=0, process_index=0, process_count=1):
    """(epoch, start_step) -> this process's rows of each shuffled global batch."""
    n = len(next(iter(data.values())))
    steps = n // batch
    per_process = batch // process_count

    def batches_fn(epoch, start_step):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        for step in range(start_step, steps):
            rows = order[step * batch : (step + 1) * batch]
            rows = rows[process_index * per_process : (process_index + 1) * per_process]
            yield {k: v[rows] for k, v in data.items()}

    return batches_fn


def make_lm_data(batch=BATCH, seq_len=5, steps=STEPS_PER_EPOCH, vocab=7, seed=0):
    """Contiguous LM layout: row b of batch i+1 continues row b of batch i."""
    rng = np.random.default_rng(seed)
    streams = rng.integers(0, vocab, size=(batch, steps * seq_len + 1)).astype(np.int32)

    def batches_fn(epoch, start_step):
        del epoch
        for i in range(start_step, steps):
            window = streams[:, i * seq_len : (i + 1) * seq_len + 1]
            yield {"inputs": window[:, :-1], "targets": window[:, 1:]}

    return batches_fn


def assert_trees_equal(a, b):
    """Every leaf bitwise equal (typed keys compared through their key data)."""

    def data(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    assert leaves_a, "nothing to compare"
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert np.array_equal(data(x), data(y)), (x, y)


@pytest.fixture
def helpers():
    """The models and data builders above, as attributes."""
    return types.SimpleNamespace(
        DropoutMLP=DropoutMLP,
        BatchNormMLP=BatchNormMLP,
        TinyRNN=TinyRNN,
        lm_loss=lm_loss,
        make_classification_data=make_classification_data,
        make_batches_fn=make_batches_fn,
        make_lm_data=make_lm_data,
        assert_trees_equal=assert_trees_equal,
        BATCH=BATCH,
        STEPS_PER_EPOCH=STEPS_PER_EPOCH,
    )
