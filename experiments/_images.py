"""What the five Fashion-MNIST experiments share: data, functional networks, one vmapped trainer.

``experiments.regularizers``, ``dropout_rate``, ``dataset_size``, ``cnn_placement`` and
``test_time_rule`` (issue 10) each train *groups* of models. A group ("arm") is one compiled
program: every model of the arm (seeds x sweep points) is a row of a ``jax.vmap`` over
parameters, keys and traced hyper-parameters (drop rates, L1/L2 strengths, max-norm radius,
translation range, mirror probability, learning rate, training-set size, active width), and
a ``lax.scan`` runs the steps of an epoch inside ``jit``. Because every hyper-parameter is
traced, one compilation serves every arm of an experiment whose models share shapes.

The networks are plain pytrees of arrays (no module system), so vmapping them is trivial:

* :func:`init_mlp` / :func:`mlp_apply`: ReLU MLP, dropout on the input and every hidden
  layer (``jdrop.dropout`` with a traced rate: the same masks as a Python float), an
  optional "active width" mask that switches units off (the fixed ``p * n`` sweep);
* :func:`init_cnn` / :func:`cnn_apply`: a LeNet-style CNN with every dropout placement
  (elementwise and spatial after convolutions, DropBlock, dense) behind traced rates.

Training data are drawn with replacement from the first ``num_train`` examples of a fixed
shuffle (``num_train`` is traced too, so data-set sizes vmap). Resumption: each arm writes
``arms/<name>.json`` when done (a finished arm is skipped) and checkpoints its state to
``arms/<name>.ckpt.pkl`` every epoch (a stopped arm resumes from its last epoch).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jdrop
from jdrop import report
from jdrop.data import load_fashion_mnist
from jdrop.report import pyplot as pyplot  # the experiments call im.pyplot()

HYPERS = ("in_rate", "hid_rate", "conv_rate", "spatial_rate", "block_rate", "path_rate", "l1",
          "l2", "max_norm", "shift", "flip", "lr", "num_train", "width", "clip")
"""Traced per-model hyper-parameters; absent ones take :data:`DEFAULT_HYPERS`."""

DEFAULT_HYPERS = {"in_rate": 0.0, "hid_rate": 0.0, "conv_rate": 0.0, "spatial_rate": 0.0,
                  "block_rate": 0.0, "path_rate": 0.0, "l1": 0.0, "l2": 0.0, "max_norm": math.inf,
                  "shift": 0.0, "flip": 0.0, "lr": 0.05, "num_train": -1, "width": -1,
                  "clip": math.inf}

PAD = 3  # the largest random translation, in pixels (``shift`` may be 0..PAD)


# ----------------------------------------------------------------------------- data


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Images:
    """Fashion-MNIST as device arrays: a fixed shuffle of the training set split into
    ``train`` (the first ``len - num_val``) and ``val``; ``test`` is the official test set.
    Inputs are float32 in [0, 1], shape (N, 28, 28, 1); labels int32."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def load_images(*, num_val: int = 10_000, max_train: int | None = None,
                max_test: int | None = None, data_dir: str | None = None,
                seed: int = 0) -> Images:
    """Loads Fashion-MNIST, shuffles the training set with ``seed`` and carves ``num_val``
    validation examples off it; ``max_train`` / ``max_test`` keep a prefix (small runs)."""
    data = load_fashion_mnist(data_dir)
    x, y = data.train["inputs"], data.train["labels"]
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    x_val, y_val = x[:num_val], y[:num_val]
    x_tr, y_tr = x[num_val:], y[num_val:]
    if max_train is not None:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    x_te, y_te = data.test["inputs"], data.test["labels"]
    if max_test is not None:
        x_te, y_te = x_te[:max_test], y_te[:max_test]
    return Images(*(jnp.asarray(a) for a in (x_tr, y_tr, x_val, y_val, x_te, y_te)))


def translate(key, images, shift):
    """Random translations by up to ``shift`` pixels (traced, ``0 <= shift <= PAD``) in each
    direction, zero-filled: ``images`` is (B, 28, 28, 1)."""
    b, h, w, c = images.shape
    s = jnp.asarray(shift, jnp.int32)
    padded = jnp.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    offsets = jax.random.randint(key, (b, 2), -s, s + 1) + PAD
    zero = jnp.zeros((), jnp.int32)
    return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], zero), (h, w, c)))(
        padded, offsets)


def mirror(key, images, rate):
    """Left-right mirror of each image with probability ``rate`` (traced, ``0 <= rate <= 1``;
    0 leaves every image as it is): ``images`` is (B, 28, 28, 1). A mirror never changes a
    Fashion-MNIST class, so it is the usual augmentation there next to shifts."""
    flip = jax.random.bernoulli(key, rate, (images.shape[0],))
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


# ----------------------------------------------------------------------------- networks


def _dense_init(key, fan_in: int, fan_out: int) -> dict:
    w = jax.random.normal(key, (fan_in, fan_out), jnp.float32) * math.sqrt(2.0 / fan_in)
    return {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}


def init_mlp(key, sizes: Sequence[int]) -> list[dict]:
    """He-initialised ReLU MLP with layer sizes ``sizes`` (input first, classes last)."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def _maybe_drop(key, h, rate, train: bool):
    return jdrop.dropout(key, h, rate) if train else h


def mlp_apply(params, x, key, hp: Mapping, train: bool):
    """Logits of the MLP for images ``x`` (B, 28, 28, 1). While ``train``: dropout with
    ``hp["in_rate"]`` on the pixels and ``hp["hid_rate"]`` after every hidden ReLU. Units at
    or beyond ``hp["width"]`` (if > 0) are switched off in every hidden layer."""
    h = x.reshape(x.shape[0], -1)
    keys = jax.random.split(key, len(params)) if train else [None] * len(params)
    h = _maybe_drop(keys[0], h, hp["in_rate"], train)
    for i, layer in enumerate(params[:-1]):
        h = jax.nn.relu(h @ layer["w"] + layer["b"])
        active = (hp["width"] <= 0) | (jnp.arange(h.shape[-1], dtype=jnp.float32) < hp["width"])
        h = jnp.where(active, h, 0.0)
        h = _maybe_drop(keys[i + 1], h, hp["hid_rate"], train)
    return h @ params[-1]["w"] + params[-1]["b"]


def init_cnn(key, channels: Sequence[int] = (32, 64), hidden: int = 256,
             num_classes: int = 10, *, kernel: int = 5, depth: int = 1) -> list[dict]:
    """LeNet-style CNN: per entry of ``channels`` a stage of ``depth`` ``kernel`` x ``kernel``
    'same' convolutions and a 2x2 max-pool (``kernel=5, depth=1``: LeNet; ``kernel=3,
    depth=2``: VGG-style pairs of 3x3 convolutions, Simonyan & Zisserman 2015), then a dense
    ``hidden`` ReLU layer and the classifier. ``cnn_apply`` needs the same ``depth``."""
    if depth < 1 or kernel < 1:
        raise ValueError(f"depth and kernel must be >= 1, got depth={depth}, kernel={kernel}")
    widths = [c for c in channels for _ in range(depth)]
    keys = jax.random.split(key, len(widths) + 2)
    params, c_in = [], 1
    for k, c in zip(keys, widths, strict=False):
        params.append({"w": _conv_init(k, kernel, c_in, c), "b": jnp.zeros((c,), jnp.float32)})
        c_in = c
    side = 28 // 2 ** len(channels)
    params.append(_dense_init(keys[-2], side * side * c_in, hidden))
    params.append(_dense_init(keys[-1], hidden, num_classes))
    return params


CONV_OPS = ("conv", "spatial", "block")  # dropout ops after convolutions (rates conv_rate, ...)


def conv_ops(hp: Mapping[str, float]) -> tuple[str, ...]:
    """The convolution-dropout ops (and ``"path"``) whose rate in ``hp`` is non-zero: only
    those are built into the program (a traced DropBlock rate of 0 still costs its mask)."""
    ops = [op for op in CONV_OPS if hp.get(f"{op}_rate", 0.0) > 0]
    return tuple(ops + (["path"] if hp.get("path_rate", 0.0) > 0 else []))


def _conv_dropout(keys, h, hp, ops, block_size: int = 3):
    if "conv" in ops:
        h = jdrop.dropout(keys[0], h, hp["conv_rate"])
    if "spatial" in ops:
        h = jdrop.spatial_dropout(keys[1], h, hp["spatial_rate"])
    if "block" in ops:
        h = jdrop.dropblock(keys[2], h, hp["block_rate"], block_size=block_size)
    return h


def cnn_apply(params, x, key, hp: Mapping, train: bool, *, ops: Sequence[str] = CONV_OPS,
              depth: int = 1):
    """Logits of :func:`init_cnn`'s network (built with the same ``depth``: a 2x2 max-pool
    follows every ``depth``-th convolution). After each convolution's ReLU, while ``train``:
    elementwise dropout (``conv_rate``), spatial dropout (``spatial_rate``) and DropBlock
    (``block_rate``); dropout ``hid_rate`` after the dense hidden layer (the LeNet/AlexNet
    placement). Only the ``ops`` (see :func:`conv_ops`) are built in; rates of 0 leave
    activations unchanged."""
    convs, (fc, head) = params[:-2], params[-2:]
    keys = jax.random.split(key, 3 * len(convs) + 1) if train else [None] * (3 * len(convs) + 1)
    h = x
    for i, layer in enumerate(convs):
        h = jax.nn.relu(_conv(h, layer["w"]) + layer["b"])
        if train:
            h = _conv_dropout(keys[3 * i:3 * i + 3], h, hp, ops)
        if (i + 1) % depth == 0:
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      "VALID")
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ fc["w"] + fc["b"])
    h = _maybe_drop(keys[-1], h, hp["hid_rate"], train)
    return h @ head["w"] + head["b"]


def _conv(h, w, stride: int = 1):
    return jax.lax.conv_general_dilated(h, w, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _conv_init(key, k: int, c_in: int, c_out: int, scale: float = 1.0):
    return jax.random.normal(key, (k, k, c_in, c_out), jnp.float32) * (
        scale * math.sqrt(2.0 / (k * k * c_in)))


def init_resnet(key, blocks: int = 3, widths: Sequence[int] = (16, 32, 64),
                num_classes: int = 10) -> dict:
    """A CIFAR-style ResNet (``6 * blocks + 2`` layers: ResNet-20 for ``blocks=3``) without
    batch norm: each residual branch's second convolution starts at zero (Fixup-style), so
    the initial network is its stem and shortcuts and trains without normalisation."""
    keys = iter(jax.random.split(key, 3 * blocks * len(widths) + 2))
    params = {"stem": {"w": _conv_init(next(keys), 3, 1, widths[0]),
                       "b": jnp.zeros((widths[0],))}, "stages": []}
    c_in = widths[0]
    for s, c in enumerate(widths):
        stage = []
        for b in range(blocks):
            block = {"w1": _conv_init(next(keys), 3, c_in, c), "b1": jnp.zeros((c,)),
                     "w2": jnp.zeros((3, 3, c, c)), "b2": jnp.zeros((c,))}
            k = next(keys)
            if c != c_in or (s > 0 and b == 0):
                block["proj"] = _conv_init(k, 1, c_in, c)
            stage.append(block)
            c_in = c
        params["stages"].append(stage)
    params["head"] = _dense_init(next(keys), c_in, num_classes)
    return params


def resnet_apply(params, x, key, hp: Mapping, train: bool, *,
                 ops: Sequence[str] = (*CONV_OPS, "path")):
    """Logits of :func:`init_resnet`'s network. While ``train``: stochastic depth
    (``jdrop.drop_path``) on residual branch ``l`` of ``L`` with rate ``path_rate * l / L``
    (the linear rule of Huang et al. 2016), elementwise / spatial dropout / DropBlock
    (``conv_rate`` / ``spatial_rate`` / ``block_rate``) between the two convolutions of each
    branch, and dropout ``hid_rate`` on the pooled features; only the ``ops`` are built in."""
    blocks = [(s, b, blk) for s, stage in enumerate(params["stages"])
              for b, blk in enumerate(stage)]
    keys = (jax.random.split(key, 4 * len(blocks) + 1) if train
            else [None] * (4 * len(blocks) + 1))
    h = jax.nn.relu(_conv(x, params["stem"]["w"]) + params["stem"]["b"])
    for i, (s, b, blk) in enumerate(blocks):
        stride = 2 if s > 0 and b == 0 else 1
        r = jax.nn.relu(_conv(h, blk["w1"], stride) + blk["b1"])
        if train:
            r = _conv_dropout(keys[4 * i:4 * i + 3], r, hp, ops)
        r = _conv(r, blk["w2"]) + blk["b2"]
        if train and "path" in ops:
            r = jdrop.drop_path(keys[4 * i + 3], r, hp["path_rate"] * (i + 1) / len(blocks))
        short = _conv(h, blk["proj"], stride) if "proj" in blk else h
        h = jax.nn.relu(short + r)
    h = _maybe_drop(keys[-1], jnp.mean(h, axis=(1, 2)), hp["hid_rate"], train)
    return h @ params["head"]["w"] + params["head"]["b"]


def is_weight(leaf) -> bool:
    """Kernels (rank >= 2) carry the L1/L2 penalties and the max-norm constraint; biases not."""
    return leaf.ndim >= 2


def _penalty(params, hp):
    l1 = sum(jnp.sum(jnp.abs(w)) for w in jax.tree.leaves(params) if is_weight(w))
    l2 = sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(params) if is_weight(w))
    return hp["l1"] * l1 + hp["l2"] * l2


def _max_norm(params, c):
    """Projects each unit's incoming weights (all axes but the last) onto ``||w|| <= c``."""
    def project(w):
        if not is_weight(w):
            return w
        norms = jnp.sqrt(jnp.sum(jnp.square(w), axis=tuple(range(w.ndim - 1)), keepdims=True))
        return jnp.where(norms > c, w * (c / jnp.maximum(norms, 1e-12)), w)
    return jax.tree.map(project, params)


# ----------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """How every model of an arm trains (static: a change recompiles)."""

    steps_per_epoch: int  # SGD steps between evaluations ("epoch" of the curves)
    num_epochs: int  # evaluations (and checkpoints)
    batch_size: int = 100  # examples per step
    momentum: float = 0.9  # SGD momentum
    schedule: str = "constant"  # learning rate: "constant" or "cosine" (decays to 0 by the end)
    models_axis: str = "vmap"  # models of an arm: "vmap", "map" or "host" (see Trainer)
    eval_examples: int = 2_000  # train / test examples of the per-epoch curves
    eval_batch: int = 1_000  # examples per forward pass when evaluating


def _clip_by_global_norm(grads, clip):
    """``grads * min(1, clip / ||grads||_2)`` (no-op for ``clip = inf``)."""
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads)))
    scale = jnp.minimum(1.0, clip / jnp.maximum(norm, 1e-12))
    return jax.tree.map(lambda g: g * scale, grads)


def full_hypers(hypers: Mapping[str, Sequence[float]]) -> dict[str, jax.Array]:
    unknown = set(hypers) - set(HYPERS)
    if unknown:
        raise ValueError(f"unknown hyper-parameters {sorted(unknown)}; known: {HYPERS}")
    m = len(next(iter(hypers.values())))
    return {h: jnp.asarray(hypers.get(h, [DEFAULT_HYPERS[h]] * m), jnp.float32) for h in HYPERS}


def _errors(apply_fn, params, hp, x, y, count, eval_batch):
    """Error rate and mean NLL of one model on the first ``count`` (traced) of ``x``."""
    n = x.shape[0]
    eb = min(eval_batch, n)
    nb = n // eb
    xb, yb = x[: nb * eb].reshape(nb, eb, *x.shape[1:]), y[: nb * eb].reshape(nb, eb)

    def one(carry, xy):
        logits = apply_fn(params, xy[0], None, hp, False)
        wrong = (jnp.argmax(logits, -1) != xy[1]).astype(jnp.float32)
        nll = -jnp.take_along_axis(jax.nn.log_softmax(logits), xy[1][:, None], -1)[:, 0]
        return carry, (wrong, nll)

    _, (wrong, nll) = jax.lax.scan(one, None, (xb, yb))
    valid = (jnp.arange(nb * eb, dtype=jnp.float32) < count).astype(jnp.float32)
    total = jnp.maximum(jnp.sum(valid), 1.0)
    return jnp.sum(wrong.reshape(-1) * valid) / total, jnp.sum(nll.reshape(-1) * valid) / total


class Trainer:
    """Compiles the epoch and evaluation of ``apply_fn`` once per static shape.

    ``spec.models_axis`` says how the models of an arm (leading axis of every argument) run:

    * ``"vmap"``: one program, the models a ``jax.vmap`` axis and the epoch's steps a
      ``lax.scan`` (MLPs: the matrix products batch over models);
    * ``"map"``: one program, a ``lax.map`` over the models of that scan (a vmapped
      convolution kernel becomes a grouped convolution, which XLA:CPU runs far slower);
    * ``"host"``: one compiled SGD step of one model, called for every model and step from
      Python. On XLA:CPU (jax 0.10) a convolution's *gradient* inside a loop (``lax.scan``,
      ``lax.map``) runs about 10x slower than the same step as its own program (2.0 s
      against 0.2 s for the 32-64-256 CNN, batch 128), so CNNs train this way on a CPU
      (:func:`conv_models_axis`); a 0.2 s step makes the dispatch cost negligible.

    The three run the same step function with the same keys: the same models up to float
    rounding (``tests/experiments/test_images.py``).
    """

    def __init__(self, apply_fn: Callable, data: Images, spec: TrainSpec):
        if spec.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {spec.schedule!r}")
        self.apply_fn, self.data, self.spec = apply_fn, data, spec
        if spec.models_axis == "vmap":
            epoch_fn = jax.vmap(self._one_epoch, in_axes=(0, 0, 0, None, None))
            eval_fn = jax.vmap(self._one_eval, in_axes=(0, 0, None, None))
        elif spec.models_axis in ("map", "host"):
            def epoch_fn(state, hp, keys, epoch, d):
                return jax.lax.map(lambda a: self._one_epoch(*a, epoch, d), (state, hp, keys))

            def eval_fn(params, hp, d, full):  # forward passes run at full speed in a loop
                return jax.lax.map(lambda a: self._one_eval(*a, d, full), (params, hp))
        else:
            raise ValueError(f"models_axis must be 'vmap', 'map' or 'host', got "
                             f"{spec.models_axis!r}")
        self._epoch = jax.jit(epoch_fn)
        self._step = jax.jit(self._one_step)
        self._eval = jax.jit(eval_fn, static_argnums=(3,))

    def _one_step(self, state, hp, key, epoch, i, d):
        """SGD-momentum step ``i`` of epoch ``epoch`` of one model; returns the new state."""
        s = self.spec
        n_avail = d.x_train.shape[0]
        num_train = jnp.where(hp["num_train"] > 0, hp["num_train"], n_avail).astype(jnp.int32)

        def loss_fn(params, x, y, k):
            logits = self.apply_fn(params, x, k, hp, True)
            nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], -1))
            return nll + _penalty(params, hp)

        lr = hp["lr"]
        if s.schedule == "cosine":
            t = (epoch * s.steps_per_epoch + i).astype(jnp.float32) / (
                s.steps_per_epoch * s.num_epochs)
            lr = lr * 0.5 * (1.0 + jnp.cos(jnp.pi * t))
        step_key = jax.random.fold_in(jax.random.fold_in(key, epoch), i)
        k_data, k_aug, k_drop = jax.random.split(step_key, 3)
        idx = jax.random.randint(k_data, (s.batch_size,), 0, num_train)
        x = translate(k_aug, d.x_train[idx], hp["shift"])
        x = mirror(jax.random.fold_in(k_aug, 1), x, hp["flip"])
        grads = _clip_by_global_norm(jax.grad(loss_fn)(state["params"], x, d.y_train[idx],
                                                       k_drop), hp["clip"])
        velocity = jax.tree.map(lambda v, g: s.momentum * v + g, state["velocity"], grads)
        params = jax.tree.map(lambda p, v: p - lr * v, state["params"], velocity)
        return {"params": _max_norm(params, hp["max_norm"]), "velocity": velocity}

    def _one_epoch(self, state, hp, key, epoch, d):
        """``steps_per_epoch`` steps of one model in a ``lax.scan``; returns the new state."""
        def step(state, i):
            return self._one_step(state, hp, key, epoch, i, d), None

        state, _ = jax.lax.scan(step, state, jnp.arange(self.spec.steps_per_epoch))
        return state

    def _one_eval(self, params, hp, d, full: bool):
        """Train / val / test error and NLL of one model. The train error is measured on the
        first ``eval_examples`` training examples (those a small ``num_train`` trains on);
        val and test on their first ``eval_examples`` unless ``full``."""
        s = self.spec
        n_tr = jnp.where(hp["num_train"] > 0, hp["num_train"], d.x_train.shape[0])
        k = s.eval_examples
        out = {}
        for name, x, y, count in (
                ("train", d.x_train[:k], d.y_train[:k], jnp.minimum(n_tr, k)),
                ("val", d.x_val, d.y_val, d.x_val.shape[0]),
                ("test", d.x_test, d.y_test, d.x_test.shape[0])):
            if name != "train" and not full:
                x, y, count = x[:k], y[:k], min(count, k)
            if x.shape[0] == 0:
                continue
            err, nll = _errors(self.apply_fn, params, hp, x, y, count, s.eval_batch)
            out[f"{name}_error"], out[f"{name}_nll"] = err, nll
        return out

    def init_state(self, params):
        return {"params": params, "velocity": jax.tree.map(jnp.zeros_like, params)}

    def epoch(self, state, hp, keys, epoch: int):
        """One epoch of every model (leading axis of ``state``, ``hp`` and ``keys``)."""
        epoch = jnp.asarray(epoch, jnp.int32)
        if self.spec.models_axis != "host":
            # the data are arguments, not constants baked into the program
            return self._epoch(state, hp, keys, epoch, self.data)
        models = []
        for m in range(keys.shape[0]):
            one, hp_m = jax.tree.map(lambda a, m=m: a[m], (state, hp))
            for i in range(self.spec.steps_per_epoch):
                one = self._step(one, hp_m, keys[m], epoch, jnp.asarray(i, jnp.int32),
                                 self.data)
            models.append(one)
        return jax.tree.map(lambda *a: jnp.stack(a), *models)

    def evaluate(self, params, hp, *, full: bool):
        return {k: np.asarray(v) for k, v in self._eval(params, hp, self.data, full).items()}


def _tree_np(tree):
    return jax.tree.map(np.asarray, tree)


def _where_models(which, new, old):
    """Per model (leading axis), ``new`` where ``which`` else ``old``."""
    return jax.tree.map(lambda a, b: jnp.where(which.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
                        new, old)


def run_arm(trainer: Trainer, init_fn: Callable, name: str, hypers: Mapping[str, Sequence],
            seeds: Sequence[int], workdir: str | os.PathLike, *, select: str = "last",
            progress: bool = True, save_params: bool = False) -> dict:
    """Trains (or resumes, or loads) arm ``name``: one model per row of ``hypers``/``seeds``.

    Args:
      trainer: the compiled :class:`Trainer`.
      init_fn: ``key -> params`` of one model.
      name: arm name (file stem under ``workdir/arms``).
      hypers: traced hyper-parameters, one list entry per model (see :data:`HYPERS`).
      seeds: one seed per model (parameters, data order, masks derive from it).
      workdir: output folder.
      select: ``"last"`` (the final epoch) or ``"best_val"`` (early stopping: the epoch with
        the lowest validation error; its parameters are kept).
      progress: print one line per epoch.
      save_params: also write the selected parameters to ``arms/<name>.params.pkl``.

    Returns:
      The arm record: per model its hyper-parameters, seed, ``test_accuracy``,
      ``test_error``, ``train_error``, ``test_nll``, the epoch selected and the curves.
    """
    arms = Path(workdir) / "arms"
    arms.mkdir(parents=True, exist_ok=True)
    done, ckpt = arms / f"{name}.json", arms / f"{name}.ckpt.pkl"
    if done.exists():
        if progress:
            print(f"[{name}] done earlier: {done}", flush=True)
        return json.loads(done.read_text())
    hp = full_hypers(hypers)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    num_epochs = trainer.spec.num_epochs
    if ckpt.exists():
        saved = pickle.loads(ckpt.read_bytes())
        state = jax.tree.map(jnp.asarray, saved["state"])
        best, curves, start, seconds = (jax.tree.map(jnp.asarray, saved["best"]),
                                        saved["curves"], saved["epoch"], saved["seconds"])
        if progress:
            print(f"[{name}] resuming at epoch {start}/{num_epochs}", flush=True)
    else:
        params = jax.vmap(init_fn)(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys))
        state, best, curves, start, seconds = trainer.init_state(params), None, [], 0, 0.0
    train_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(keys)
    for epoch in range(start, num_epochs):
        t0 = time.perf_counter()
        state = trainer.epoch(state, hp, train_keys, epoch)
        metrics = trainer.evaluate(state["params"], hp, full=False)
        curves.append({k: v.tolist() for k, v in metrics.items()})
        if "val_error" in metrics:
            val = metrics["val_error"]
            if best is None:
                best = {"params": state["params"], "val": jnp.asarray(val),
                        "epoch": jnp.full(val.shape, epoch + 1)}
            else:
                better = jnp.asarray(val) < best["val"]
                best = {"params": _where_models(better, state["params"], best["params"]),
                        "val": jnp.where(better, jnp.asarray(val), best["val"]),
                        "epoch": jnp.where(better, epoch + 1, best["epoch"])}
        seconds += time.perf_counter() - t0
        tmp = ckpt.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps({"state": _tree_np(state), "best": _tree_np(best),
                                      "curves": curves, "epoch": epoch + 1,
                                      "seconds": seconds}))
        tmp.replace(ckpt)
        if progress:
            print(f"[{name}] epoch {epoch + 1}/{num_epochs}  {seconds:7.1f}s  test error "
                  f"{np.mean(metrics['test_error']):.4f}  train error "
                  f"{np.mean(metrics['train_error']):.4f}", flush=True)
    chosen = best["params"] if select == "best_val" and best is not None else state["params"]
    final = trainer.evaluate(chosen, hp, full=True)
    models = []
    for m, seed in enumerate(seeds):
        rec = {"seed": int(seed), **{h: hypers[h][m] for h in hypers}}  # as given
        rec["epoch"] = (int(best["epoch"][m]) if select == "best_val" and best is not None
                        else num_epochs)
        for k, v in final.items():
            rec[k] = float(v[m])
        rec["test_accuracy"] = 1.0 - rec["test_error"]
        rec["curves"] = {k: [c[k][m] for c in curves] for k in curves[0]}
        models.append(rec)
    record = {"arm": name, "select": select, "seconds": round(seconds, 1), "models": models}
    if save_params:
        (arms / f"{name}.params.pkl").write_bytes(pickle.dumps(_tree_np(chosen)))
    done.write_text(json.dumps(record, indent=1))
    ckpt.unlink(missing_ok=True)
    return record


def load_params(workdir, name: str):
    """The parameters :func:`run_arm` saved for arm ``name`` (``save_params=True``)."""
    return jax.tree.map(jnp.asarray,
                        pickle.loads((Path(workdir) / "arms" / f"{name}.params.pkl").read_bytes()))


# ----------------------------------------------------------------------------- reporting


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def summarize(models: Sequence[Mapping], fields=("train_error", "test_error", "test_nll")):
    """Mean and sample std over models (seeds) of each field, plus ``test_accuracy``."""
    out = {}
    for f in (*fields, "test_accuracy"):
        out[f"{f}_mean"], out[f"{f}_std"] = mean_std([m[f] for m in models])
    return out


def pct(mean: float, std: float | None = None) -> str:
    """A fraction as a percentage with two decimals, ``± std`` when given."""
    return f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """:func:`jdrop.report.markdown_table` with every cell written by ``str`` (the rates and
    counts of the sweeps as given), without the final newline."""
    return report.markdown_table(header, [[str(c) for c in row] for row in rows]).rstrip("\n")


def write_outputs(workdir, stem: str, result: Mapping, markdown: str) -> None:
    """Writes ``<stem>.json`` and ``<stem>.md`` into ``workdir`` and prints the Markdown."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    (workdir / f"{stem}.md").write_text(markdown + "\n")
    print(markdown, flush=True)


def run_note(experiment: str, config, seconds: float) -> str:
    """The 'what was run' line of a results note."""
    command = " ".join([f"python -m experiments.{experiment}", *sys.argv[1:]])
    load = os.getloadavg()[0]  # how busy the machine was: wall times depend on it
    return (f"Configuration `{config.name}` ({json.dumps(dataclasses.asdict(config))}); "
            f"wall time of this invocation {seconds / 60:.1f} min on {os.cpu_count()} CPU "
            f"cores, 1-minute load average {load:.1f} at its end (`{command}`).")


def strip_curves(arm: Mapping) -> dict:
    """An arm record without per-epoch curves (for the compact results JSON)."""
    return {**arm, "models": [{k: v for k, v in m.items() if k != "curves"}
                              for m in arm["models"]]}


def measure_vmap_speedup(num_models: int = 3, sizes=(784, 128, 128, 10), steps: int = 200,
                         num_train: int = 5_000, repeats: int = 3) -> dict:
    """Seconds to train ``num_models`` MLPs ``steps`` steps as one vmapped program vs a
    Python loop of single-model runs (same compiled step, batch of one model), compile
    excluded (each timed after a warm-up); also the first-call (compile-included) times."""
    data = load_images(num_val=0, max_train=num_train, max_test=1_000)
    spec = TrainSpec(steps_per_epoch=steps, num_epochs=1)
    trainer = Trainer(mlp_apply, data, spec)
    hp_all = full_hypers({"in_rate": [0.2] * num_models, "hid_rate": [0.5] * num_models})
    init = jax.vmap(lambda k: init_mlp(k, sizes))

    def run_vmapped():
        keys = jax.random.split(jax.random.key(0), num_models)
        state = trainer.init_state(init(keys))
        return trainer.epoch(state, hp_all, keys, 0)

    def run_loop():
        out = []
        for m in range(num_models):
            keys = jax.random.split(jax.random.key(m), 1)
            hp = {k: v[m:m + 1] for k, v in hp_all.items()}
            out.append(trainer.epoch(trainer.init_state(init(keys)), hp, keys, 0))
        return out

    timings = {}
    for name, fn in (("vmapped", run_vmapped), ("loop", run_loop)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        timings[f"{name}_first_call_s"] = time.perf_counter() - t0
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best = min(best, time.perf_counter() - t0)
        timings[f"{name}_s"] = best
    timings["speedup"] = timings["loop_s"] / timings["vmapped_s"]
    timings["speedup_first_call"] = timings["loop_first_call_s"] / timings["vmapped_first_call_s"]
    timings["config"] = {"num_models": num_models, "sizes": list(sizes), "steps": steps,
                         "batch_size": spec.batch_size}
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in timings.items()}


# ----------------------------------------------------------------------------- entry points


def grid(points: Sequence[Mapping[str, float]], seeds: Sequence[int]):
    """``(hypers, seeds)`` for :func:`run_arm`: every point once per seed (point-major)."""
    names = sorted({h for p in points for h in p})
    rows = [(p, s) for p in points for s in seeds]
    hypers = {h: [p.get(h, DEFAULT_HYPERS[h]) for p, _ in rows] for h in names}
    return hypers, [s for _, s in rows]


def by_point(arm: Mapping, keys: Sequence[str]) -> dict[tuple, list[dict]]:
    """The models of an arm grouped by their values of the hyper-parameters ``keys``."""
    out: dict[tuple, list[dict]] = {}
    for m in arm["models"]:
        out.setdefault(tuple(m[k] for k in keys), []).append(m)
    return out


def parse_flags(config_module, argv, description: str, check: Callable | None = None):
    """``experiments.flags.parse`` for an image experiment (``--cpu``: ``config.cpu()``)."""
    from experiments import flags

    return flags.parse(config_module, argv, description=description, check=check)


def conv_models_axis() -> str:
    """How a CNN's models train (see :class:`Trainer`): ``"host"`` on a CPU, where a
    convolution's gradient in a loop is slow, else ``"map"`` (one program)."""
    return "host" if jax.default_backend() == "cpu" else "map"


def trainer_for(apply_fn: Callable, data: Images, c, *, num_epochs: int | None = None,
                steps_per_epoch: int | None = None, models_axis: str = "vmap") -> Trainer:
    """A :class:`Trainer` from an experiment config's ``batch_size``, ``momentum`` (0.9 if
    absent), ``schedule``, ``eval_examples`` and ``num_epochs``; an epoch is one pass over
    the training set unless ``steps_per_epoch`` is given."""
    n = int(data.x_train.shape[0])
    spec = TrainSpec(steps_per_epoch=steps_per_epoch or max(n // c.batch_size, 1),
                     num_epochs=num_epochs or c.num_epochs, batch_size=c.batch_size,
                     momentum=getattr(c, "momentum", 0.9), schedule=c.schedule,
                     eval_examples=c.eval_examples, models_axis=models_axis)
    return Trainer(apply_fn, data, spec)
