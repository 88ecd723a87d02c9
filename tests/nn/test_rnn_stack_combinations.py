"""RNNStack with its dropouts together (issue 16): each is tested alone in test_rnn_stack.

Input, between-layer, output, recurrent (variational), weight drop and zoneout at once,
every rate distinct and none exact in binary (a rate or key given to the wrong site
changes the output), over both cells and both dropout modes, against a float64 numpy
loop written from the module docstring. (The stack has no bidirectional option.)
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jdrop
from jdrop.nn import RNNStack

B, T, F, HIDDEN = 3, 5, 6, (6, 6)  # one width: few distinct mask shapes to compile
RATES = dict(input_dropout=0.1, hidden_dropout=0.2, output_dropout=0.3, weight_drop=0.35)


@functools.partial(jax.jit, static_argnums=1)
def _keep_mask(key, shape, rate):
    return jdrop.keep_mask(key, shape, rate)


def _keep(key, shape, rate):
    return np.asarray(_keep_mask(key, shape, np.float32(rate)))


def _drop(keep, x, rate):
    return np.where(keep, x / (1 - rate), 0.0)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def _np_stack(stack, x, key, *, training, recurrent, zoneout):
    """The documented stack in numpy: time-major, keys split 4 per layer + 1 for the output."""
    keys = jdrop.split_key(key, 4 * len(stack.cells) + 1)
    variational = stack.dropout_mode == "variational"
    xt = np.swapaxes(np.asarray(x, np.float64), 0, 1)  # (T, B, F)

    def drop_sequence(k, xt, rate):
        if not training or rate == 0:
            return xt
        shape = (1, *xt.shape[1:]) if variational else xt.shape  # locked: one mask per sequence
        return _drop(_keep(k, shape, rate), xt, rate)

    for index, cell in enumerate(stack.cells):
        k_in, k_rec, k_wd, k_zone = keys[4 * index:4 * index + 4]
        xt = drop_sequence(k_in, xt, RATES["input_dropout"] if index == 0
                           else RATES["hidden_dropout"])
        w_ih, b_ih = np.asarray(cell.w_ih[...], np.float64), np.asarray(cell.b_ih[...], np.float64)
        w_hh = np.asarray(cell.w_hh[...], np.float64)
        if training:  # weight_drop on one array: its leaf 0 uses fold_in(key, 0)
            rate = RATES["weight_drop"]
            w_hh = _drop(_keep(jax.random.fold_in(k_wd, 0), w_hh.shape, rate), w_hh, rate)
        hidden = w_hh.shape[0]
        lstm = stack.cell_kind == "lstm"
        state = [np.zeros((B, hidden))] * (2 if lstm else 1)
        rec_keep = _keep(k_rec, (B, hidden), recurrent) if training and recurrent else None
        outputs = []
        for t in range(T):
            h = state[0]
            h_rec = h if rec_keep is None else _drop(rec_keep, h, recurrent)
            gx = xt[t] @ w_ih + b_ih
            if lstm:
                a_i, a_f, a_g, a_o = np.split(gx + h_rec @ w_hh, 4, axis=-1)
                c = _sigmoid(a_f) * state[1] + _sigmoid(a_i) * np.tanh(a_g)
                new = [_sigmoid(a_o) * np.tanh(c), c]
            else:
                b_hh = np.asarray(cell.b_hh[...], np.float64)
                x_r, x_z, x_n = np.split(gx, 3, axis=-1)
                h_r, h_z, h_n = np.split(h_rec @ w_hh + b_hh, 3, axis=-1)
                r, z = _sigmoid(x_r + h_r), _sigmoid(x_z + h_z)
                n = np.tanh(x_n + r * h_n)
                new = [n + z * (h - n)]
            if zoneout:
                if training:  # one mask over the stacked state entries, fold_in(key, t)
                    update = _keep(jax.random.fold_in(k_zone, t), (len(new), B, hidden), zoneout)
                    new = list(np.where(update, np.stack(new), np.stack(state)))
                else:
                    new = [zoneout * p + (1 - zoneout) * n for p, n in zip(state, new, strict=True)]
            state = new
            outputs.append(state[0])
        xt = np.stack(outputs)
    xt = drop_sequence(keys[-1], xt, RATES["output_dropout"])
    return np.swapaxes(xt, 0, 1)


@pytest.mark.parametrize("cell,mode,zoneout,lstm_vjp", [
    ("lstm", "variational", 0.15, True),    # everything at once (zoneout: the scan path)
    ("lstm", "variational", 0.0, True),     # the hand-written LSTM backward path
    ("lstm", "zaremba", 0.15, True),
    ("gru", "variational", 0.15, True),
    ("gru", "zaremba", 0.0, True),
])
def test_stack_with_every_dropout_matches_numpy(cell, mode, zoneout, lstm_vjp):
    recurrent = 0.4 if mode == "variational" else 0.0
    stack = RNNStack(F, HIDDEN, rngs=nnx.Rngs(0), cell=cell, dropout_mode=mode,
                     recurrent_dropout=recurrent, zoneout=zoneout, lstm_vjp=lstm_vjp, **RATES)
    x = np.random.default_rng(3).normal(size=(B, T, F)).astype(np.float32)
    key = jax.random.key(13)
    run = nnx.jit(lambda stack, x, key: stack(x, key=key)[0])
    got = np.asarray(run(stack, jnp.asarray(x), key))
    want = _np_stack(stack, x, key, training=True, recurrent=recurrent, zoneout=zoneout)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    if not zoneout:
        return
    # inference: no mask anywhere, zoneout's expectation
    clean = nnx.jit(lambda stack, x: stack(x, deterministic=True)[0])(stack, jnp.asarray(x))
    want = _np_stack(stack, x, None, training=False, recurrent=recurrent, zoneout=zoneout)
    np.testing.assert_allclose(np.asarray(clean), want, rtol=1e-4, atol=1e-5)
