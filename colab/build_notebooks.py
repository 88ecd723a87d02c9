"""Writes the Colab notebooks of this folder from the cell lists below, and runs them.

The notebooks are generated (edit the cells here, not the ``.ipynb`` files), then executed
top to bottom so that the stored files carry the outputs of a real run::

    python colab/build_notebooks.py                    # write the notebooks, no outputs
    python colab/build_notebooks.py --execute          # write, then run (full) and store
    python colab/build_notebooks.py --execute --smoke  # run the small (CI) configuration
    python colab/build_notebooks.py --execute 03       # only the notebooks matching "03"

Running uses nbclient with the ``python3`` kernel and ``JAX_PLATFORMS=cpu`` (see
:func:`kernel_env`: eight virtual CPU devices for the quickstart, the host's own for the
training notebooks), as ``tests/test_notebooks.py`` does. Needs ``nbformat`` and
``nbclient`` (the ``dev`` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO_URL = "https://github.com/jdrop-dev/jdrop"  # placeholder organisation/repository
BADGE = (
    "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    "(https://colab.research.google.com/github/jdrop-dev/jdrop/blob/main/colab/{name})"
)


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str, *, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def header(name: str, title: str, intro: str) -> list:
    return [md(BADGE.format(name=name) + "\n\n# " + title + "\n\n" + textwrap.dedent(intro))]


def install_cell(extra: str = "") -> nbformat.NotebookNode:
    """Installs jdrop on Colab only: a no-op (no network) anywhere else."""
    return code(
        textwrap.dedent('''
        # Set-up. On Colab, install jdrop from GitHub; elsewhere (locally, in CI) it is
        # already installed and nothing is fetched.
        import os
        import subprocess
        import sys

        ON_COLAB = "google.colab" in sys.modules
        if ON_COLAB:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q",
                 "jdrop[experiments] @ git+REPO_URL"],
                check=True,
            )
        ''').replace("REPO_URL", REPO_URL)
        + textwrap.dedent(extra)
    )


def params_cell(body: str) -> nbformat.NotebookNode:
    return code(
        textwrap.dedent('''
        # Parameters. JDROP_SMOKE=1 (set by tests/test_notebooks.py) switches to a small
        # configuration that runs the whole notebook in seconds on a CPU.
        SMOKE = os.environ.get("JDROP_SMOKE") == "1"
        ''')
        + textwrap.dedent(body),
        tags=("parameters",),
    )


# --------------------------------------------------------------------------------------
# 01: quickstart.
# --------------------------------------------------------------------------------------

QUICKSTART = "01_quickstart.ipynb"


def quickstart() -> list:
    return header(QUICKSTART, "jdrop quickstart: dropout with explicit keys", r"""
        jdrop is dropout for JAX written as pure functions: **key first, then the data, then
        the rate** (the drop probability). This notebook shows

        1. explicit PRNG keys: `jax.random.key`, `split`, `fold_in`;
        2. `jdrop.dropout` and its variants, with pictures of their masks;
        3. the expectation and the variance of dropout, checked numerically;
        4. `jax.vmap` over keys: an ensemble of dropout networks in one call;
        5. the same mask on one device and sharded over all of `jax.devices()`.

        It runs on any Colab runtime (CPU, GPU or TPU) in well under a minute.
        """) + [
        install_cell(r'''
        # On a CPU-only runtime, split the host into 8 virtual devices so that the sharding
        # section has devices to shard over. Only CPU devices are affected (a GPU or TPU
        # runtime keeps its own devices), and it must happen before JAX is imported.
        if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = (
                os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
            ).strip()
        '''),
        code(r'''
        %matplotlib inline
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np

        import jdrop

        print("jax", jax.__version__, "| backend:", jax.default_backend(),
              "| devices:", jax.device_count())
        '''),
        params_cell(r'''
        NUM_DRAWS = 200_000 if SMOKE else 2_000_000  # values per rate in the statistics check
        NUM_MEMBERS = 200 if SMOKE else 1000  # ensemble size of the vmap section
        '''),
        md(r'''
        ## 1. Explicit keys

        JAX has no global random state: every random function takes a key. A key is split
        into independent keys, and `fold_in(key, i)` derives the key of step `i` (a training
        loop uses `fold_in(key, step)`, so a resumed run draws the same masks). The same key
        always gives the same bits.
        '''),
        code(r'''
        key = jax.random.key(0)  # a typed key; legacy jax.random.PRNGKey(0) works too
        init_key, data_key, dropout_key = jax.random.split(key, 3)
        step_key = jax.random.fold_in(dropout_key, 7)  # the key of training step 7

        x = jax.random.normal(data_key, (2, 8))
        a = jdrop.dropout(step_key, x, 0.5)
        b = jdrop.dropout(step_key, x, 0.5)
        c = jdrop.dropout(jax.random.fold_in(dropout_key, 8), x, 0.5)
        print("same key, same mask:       ", bool((a == b).all()))
        print("step 8 draws another mask: ", bool((a != c).any()))
        legacy = jdrop.dropout(jax.random.PRNGKey(0), x, 0.5)  # uint32[2] keys work as well
        print("x:\n", np.round(np.asarray(x), 2))
        print("dropout(step_key, x, 0.5):\n", np.round(np.asarray(a), 2))
        '''),
        md(r'''
        ## 2. `jdrop.dropout` and its variants

        `jdrop.dropout(key, x, rate)` keeps each element with probability `1 - rate` and
        scales the kept ones by `1 / (1 - rate)` (inverted dropout), so nothing changes at
        test time. `rate=0` or `deterministic=True` returns `x` untouched; `rate=1` returns
        zeros (never NaN). The variants differ only in **which elements share a mask
        value**:

        | function | drops |
        |---|---|
        | `dropout(key, x, rate)` | single elements |
        | `dropout(..., broadcast_dims=(1,))` | the same elements at every index of axis 1 |
        | `spatial_dropout(key, x, rate)` | whole channels (feature maps) of each example |
        | `dropblock(key, x, rate, block_size=b)` | `b x b` squares of each feature map |
        | `locked_dropout(key, x, rate)` | the same features at every time step (variational) |
        | `drop_path(key, x, rate)` | whole examples (stochastic depth of a residual branch) |
        | `gaussian_dropout(key, x, rate)` | nothing: multiplies by `N(1, rate/(1-rate))` noise |
        '''),
        code(r'''
        x = jnp.arange(1.0, 7.0)
        print("dropout 0.5:   ", jdrop.dropout(key, x, 0.5))
        print("rate 0:        ", jdrop.dropout(key, x, 0.0))
        print("deterministic: ", jdrop.dropout(None, x, 0.5, deterministic=True))
        print("rate 1:        ", jdrop.dropout(key, x, 1.0))
        print("keep mask:     ", jdrop.keep_mask(key, x.shape, 0.5))
        '''),
        md(r'''
        Below, each picture is a mask: the input is all ones, white is kept, black dropped.
        '''),
        code(r'''
        k = jax.random.split(jax.random.key(1), 6)
        ones = jnp.ones
        pictures = {
            "dropout(x, 0.3)\n32 x 32 image": jdrop.dropout(k[0], ones((32, 32)), 0.3),
            "dropout(..., broadcast_dims=(0,))\nwhole columns": jdrop.dropout(
                k[1], ones((32, 32)), 0.3, broadcast_dims=(0,)),
            "dropblock(x, 0.3, block_size=5)\none feature map": jdrop.dropblock(
                k[2], ones((1, 32, 32, 1)), 0.3, block_size=5)[0, :, :, 0],
            "locked_dropout(x, 0.3)\nrows: time, columns: features": jdrop.locked_dropout(
                k[3], ones((1, 32, 32)), 0.3)[0],
        }
        fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
        for ax, (title, y) in zip(axes, pictures.items(), strict=True):
            ax.imshow(np.asarray(y) > 0, cmap="gray", vmin=0, vmax=1)
            ax.set_title(title, fontsize=9)
            ax.set_xticks([]), ax.set_yticks([])
        plt.tight_layout()
        plt.show()

        # Spatial dropout on a batch of 2 examples with 8 channels of 12 x 12: each tile is a
        # channel; a channel is kept or dropped as a whole, independently per example.
        y = jdrop.spatial_dropout(k[4], ones((2, 12, 12, 8)), 0.4)
        fig, axes = plt.subplots(2, 8, figsize=(12, 3.3))
        for n in range(2):
            for ch in range(8):
                axes[n, ch].imshow(np.asarray(y[n, :, :, ch]) > 0, cmap="gray", vmin=0, vmax=1)
                axes[n, ch].set_xticks([]), axes[n, ch].set_yticks([])
                axes[n, ch].set_title(f"example {n}, ch {ch}", fontsize=7)
        fig.suptitle("spatial_dropout(x, 0.4): whole channels", fontsize=10)
        plt.tight_layout()
        plt.show()
        '''),
        md(r'''
        ## 3. Expectation and variance, checked numerically

        With `m ~ Bernoulli(1 - p)` and `y = m x / (1 - p)`:

        $$\mathbb{E}[y] = x, \qquad \mathrm{Var}[y] = x^2 \frac{p}{1 - p}.$$

        Gaussian dropout multiplies by `N(1, p / (1 - p))` noise: the same two moments.
        Below, each row draws `NUM_DRAWS` values of `y` for `x = 2` and compares the sample
        moments with the formulas; the check allows 5 standard errors.
        '''),
        code(r'''
        x_value = 2.0
        x = jnp.full((NUM_DRAWS,), x_value, jnp.float32)
        print(f"{'variant':>18} {'rate':>5} {'mean':>8} {'E[y]':>6} {'var':>8} {'Var[y]':>8}"
              f" {'kept':>7}")
        for name, fn in (("dropout", jdrop.dropout), ("gaussian_dropout", jdrop.gaussian_dropout)):
            for i, rate in enumerate((0.1, 0.3, 0.5, 0.8)):
                y = np.asarray(fn(jax.random.fold_in(key, i), x, rate), np.float64)
                mean, var = y.mean(), y.var()
                expected_var = x_value**2 * rate / (1 - rate)
                se_mean = np.sqrt(expected_var / y.size)
                se_var = np.std((y - mean) ** 2) / np.sqrt(y.size)
                assert abs(mean - x_value) < 5 * se_mean, (name, rate, mean)
                assert abs(var - expected_var) < 5 * se_var, (name, rate, var)
                kept = f"{np.mean(y != 0):7.4f}" if name == "dropout" else "      -"
                print(f"{name:>18} {rate:5.1f} {mean:8.4f} {x_value:6.1f} {var:8.4f} "
                      f"{expected_var:8.4f} {kept}")
        print("all sample moments within 5 standard errors of the formulas")
        '''),
        md(r'''
        The gradient of dropout is the same mask, scaled: `dy/dx = m / (1 - p)`.
        '''),
        code(r'''
        x = jnp.arange(1.0, 7.0)
        grad = jax.grad(lambda x: jdrop.dropout(key, x, 0.5).sum())(x)
        print("mask / (1 - p):", jdrop.keep_mask(key, x.shape, 0.5) / 0.5)
        print("gradient:      ", grad)
        '''),
        md(r'''
        ## 4. `jax.vmap` over keys: an ensemble

        Because the key is an argument, `jax.vmap` over a batch of keys runs many dropout
        networks at once: this is Monte-Carlo dropout (`jdrop.mc` wraps it with chunking and
        sharding). Each member is exactly what one call with its key gives.
        '''),
        code(r'''
        keys = jax.random.split(jax.random.key(2), NUM_MEMBERS)
        x = jnp.linspace(-1.0, 1.0, 5)
        ensemble = jax.vmap(jdrop.dropout, in_axes=(0, None, None))(keys, x, 0.5)
        print("ensemble shape:", ensemble.shape)
        same = bool((ensemble[3] == jdrop.dropout(keys[3], x, 0.5)).all())
        print("member 3 == dropout(keys[3], x):", same)
        print("x:            ", x)
        print("ensemble mean:", np.round(np.asarray(ensemble.mean(0)), 3))
        '''),
        md(r'''
        The same with a small random network `f(key, x)`: a two-layer MLP with dropout on its
        hidden units (weights untrained; the point is the mechanics).
        `broadcast_dims=(0,)` shares one mask across the batch of inputs, so each key selects
        one subnetwork, a whole function of `x`; `vmap` over keys gives the ensemble. The
        spread of its members is what MC dropout reads as uncertainty.
        '''),
        code(r'''
        w_key, b_key, v_key = jax.random.split(jax.random.key(3), 3)
        W = jax.random.normal(w_key, (1, 128))
        b = jax.random.normal(b_key, (128,))
        V = jax.random.normal(v_key, (128, 1)) / np.sqrt(128)


        def f(key, x):
            h = jax.nn.relu(x[:, None] @ W + b)  # (N, 128)
            h = jdrop.dropout(key, h, 0.3, broadcast_dims=(0,), deterministic=key is None)
            return (h @ V)[:, 0]


        xs = jnp.linspace(-3.0, 3.0, 200)
        samples = jax.jit(jax.vmap(f, in_axes=(0, None)))(keys, xs)  # (members, 200)
        mean, std = samples.mean(0), samples.std(0)
        plt.figure(figsize=(7, 3.5))
        plt.plot(xs, samples[:30].T, color="C0", alpha=0.25, lw=1)
        plt.plot(xs, mean, color="C1", lw=2, label="ensemble mean")
        plt.fill_between(xs, mean - 2 * std, mean + 2 * std, color="C1", alpha=0.2,
                         label="mean +- 2 std")
        plt.plot(xs, f(None, xs), "k--", lw=1, label="no dropout (key=None)")
        plt.legend(fontsize=8)
        plt.title(f"{NUM_MEMBERS} subnetworks of one network (30 drawn)")
        plt.show()
        '''),
        md(r'''
        ## 5. One mask, any number of devices

        jdrop's masks are keyed by each element's global position (a counter hash), so the
        mask of an array does not depend on how the array is split over devices, and drawing
        it never gathers the array onto one device. Below, the same `jax.jit`-ed function
        runs on one device and on a `NamedSharding` over a `Mesh` of **all** devices
        (8 virtual CPU devices on a CPU runtime, the GPU, or the TPU cores), and the results
        are compared bit for bit.
        '''),
        code(r'''
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        devices = jax.devices()
        n = len(devices)
        mesh = Mesh(np.array(devices), ("data",))
        print(f"{n} device(s): {devices[0].platform}; mesh axes {dict(mesh.shape)}")

        images = jax.random.normal(jax.random.key(4), (4 * n, 16, 16, 8))
        sequences = jax.random.normal(jax.random.key(5), (4 * n, 20, 32))
        variants = {
            "dropout": (lambda k, x: jdrop.dropout(k, x, 0.3), images),
            "dropout, broadcast over H, W": (
                lambda k, x: jdrop.dropout(k, x, 0.3, broadcast_dims=(1, 2)), images),
            "spatial_dropout": (lambda k, x: jdrop.spatial_dropout(k, x, 0.3), images),
            "dropblock": (lambda k, x: jdrop.dropblock(k, x, 0.3, block_size=3), images),
            "locked_dropout": (lambda k, x: jdrop.locked_dropout(k, x, 0.3), sequences),
        }
        sharding = NamedSharding(mesh, P("data"))  # rows (examples) split over the devices
        for name, (fn, x) in variants.items():
            fn = jax.jit(fn)
            one = fn(key, jax.device_put(x, devices[0]))
            sharded = fn(key, jax.device_put(x, sharding))
            assert np.array_equal(np.asarray(one), np.asarray(sharded)), name
            assert sharded.sharding.is_equivalent_to(sharding, x.ndim), name
            print(f"{name:>30}: identical on 1 and {n} device(s); output sharded as the input")
        shards = sharded.addressable_shards
        rows = [(s.device.id, s.index[0].start, s.index[0].stop) for s in shards]
        print("(device, first row, end row):", rows)
        '''),
        md(r'''
        ## Where next

        * `02_mc_dropout_uncertainty.ipynb`: train a dropout network, then Monte-Carlo
          dropout for calibrated predictions and out-of-distribution detection.
        * `03_cifar10_cnn.ipynb`: a CNN on CIFAR-10, data parallel over every accelerator
          core.
        * `04_rnn_language_model.ipynb`: variational LSTM language model on Tiny Shakespeare.
        '''),
    ]


# --------------------------------------------------------------------------------------
# 02: MC dropout uncertainty.
# --------------------------------------------------------------------------------------

MC = "02_mc_dropout_uncertainty.ipynb"


def mc_dropout() -> list:
    return header(MC, "Monte-Carlo dropout: uncertainty from a dropout network", r"""
        Dropout at test time turns one network into an ensemble: average `T` stochastic
        passes and you get a predictive distribution (Gal & Ghahramani, 2016). This notebook

        1. trains a small CNN with dropout on **MNIST-1D** (generated in-process, no
           download) with `jdrop.train`;
        2. compares deterministic inference (dropout off) with MC-dropout inference
           (`jdrop.mc`): accuracy, NLL, calibration (reliability diagrams, ECE);
        3. looks at the predictive entropy and the mutual information on in-distribution
           test signals and on shifted ones (noise, translation, time reversal);
        4. plots accuracy and NLL against the number of samples `T`.

        The full configuration takes a few minutes on a CPU runtime, seconds on a GPU/TPU.
        """) + [
        install_cell(),
        code(r'''
        %matplotlib inline
        import functools
        import time

        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from jdrop import mc, plots
        from jdrop import uncertainty as unc
        from jdrop.data import batches, load_dataset
        from jdrop.nn._apply import pure_apply
        from jdrop.models._cnn import MNIST1DCNN
        from jdrop.train import TrainConfig, classification_loss, make_optimizer, train

        print("jax", jax.__version__, "| backend:", jax.default_backend(),
              "| devices:", jax.device_count())
        '''),
        params_cell(r'''
        WIDTH = 8 if SMOKE else 64  # channels of each convolution
        CONV_RATE = 0.05  # spatial dropout after each convolution (whole channels)
        HEAD_RATE = 0.1  # dropout before the classifier
        NUM_EPOCHS = 2 if SMOKE else 150  # the main job's settings (experiments/mc_dropout)
        BATCH_SIZE = 96 if SMOKE else 100  # global batch, split over every device
        LEARNING_RATE = 3e-3
        NUM_SAMPLES = 10 if SMOKE else 100  # T, the number of MC-dropout passes
        MAX_TEST = 200 if SMOKE else None  # test signals used (None: all 1000)
        SEED = 0
        '''),
        md(r'''
        ## Data: MNIST-1D

        MNIST-1D (Greydanus, 2020) is a 1-D, 40-step analogue of MNIST: ten templates,
        randomly shifted, scaled, sheared and noised. It is generated by the `mnist1d` package
        in a second, so nothing is downloaded: 4000 training and 1000 test signals.
        '''),
        code(r'''
        data = load_dataset("mnist1d")
        x_train, y_train = data.train["inputs"], data.train["labels"]
        x_test, y_test = data.test["inputs"][:MAX_TEST], data.test["labels"][:MAX_TEST]
        print(data.train, "|", len(x_test), "test signals")

        fig, axes = plt.subplots(2, 5, figsize=(12, 3.5), sharex=True, sharey=True)
        for digit, ax in enumerate(axes.flat):
            ax.plot(x_train[np.flatnonzero(y_train == digit)[0]])
            ax.set_title(f"class {digit}", fontsize=9)
        plt.tight_layout()
        plt.show()
        '''),
        md(r'''
        ## Train a CNN with dropout

        `MNIST1DCNN`: three 1-D convolutions with spatial dropout after each, and dropout
        before the linear classifier. `jdrop.train.train` runs a jitted step with the batch
        sharded over every device; the dropout key of step `t` is `fold_in(key, t)`.
        '''),
        code(r'''
        model = MNIST1DCNN(
            data.num_classes, length=x_train.shape[1], channels=WIDTH, kernel_sizes=(5, 5, 5),
            strides=(1, 2, 2), padding=2, conv_rate=CONV_RATE, conv_dropout="spatial",
            head_rate=HEAD_RATE, rngs=nnx.Rngs(SEED),
        )
        steps_per_epoch = len(x_train) // BATCH_SIZE
        tx = make_optimizer("adam", LEARNING_RATE, schedule="cosine",
                            total_steps=NUM_EPOCHS * steps_per_epoch)


        def batches_fn(epoch, start_step):
            return batches(data.train, BATCH_SIZE, seed=SEED, epoch=epoch, start_step=start_step)


        start = time.perf_counter()
        result = train(model, tx, classification_loss(), batches_fn,
                       TrainConfig(num_epochs=NUM_EPOCHS, seed=SEED, progress=False,
                                   log_every=steps_per_epoch))
        model = result.model
        print(f"trained {result.step} steps in {time.perf_counter() - start:.1f} s")
        shown = sorted(set(range(0, len(result.history), max(1, NUM_EPOCHS // 6)))
                       | {len(result.history) - 1})
        for record in (result.history[i] for i in shown):
            print(f"epoch {record['epoch']:3d}: loss {record['loss']:.3f}, "
                  f"accuracy {record['accuracy']:.3f} (training batches, dropout on)")
        '''),
        md(r'''
        ## Deterministic vs Monte-Carlo inference

        `pure_apply` turns the model into a pure `fn(key, x)`: `key=None` is deterministic
        inference (dropout off: the weight-scaling rule of inverted dropout); a key gives one
        stochastic pass. `jdrop.mc.sample` vmaps it over `T` keys split from one key. The MC
        prediction averages the probabilities of the passes:
        `log p(y|x) = logsumexp_t log p_t(y|x) - log T` (`jdrop.uncertainty.mean_log_probs`).
        '''),
        code(r'''
        apply_fn, state = pure_apply(model)


        def log_probs_fn(key, x):
            return jax.nn.log_softmax(apply_fn(state, key, x), axis=-1)


        deterministic = jax.jit(functools.partial(log_probs_fn, None))
        mc_sample = jax.jit(functools.partial(mc.sample, log_probs_fn, num_samples=NUM_SAMPLES))
        mc_key = jax.random.key(SEED + 1)

        det_lp = deterministic(x_test)  # (N, K)
        samples = mc_sample(mc_key, x_test)  # (T, N, K)
        mc_lp = unc.mean_log_probs(samples)


        def metrics(log_probs, labels):
            probs = jnp.exp(log_probs)
            probs = probs / probs.sum(-1, keepdims=True)
            return {
                "accuracy": float(unc.accuracy(probs, labels)),
                "NLL": float(unc.nll_from_log_probs(log_probs, labels)),
                "ECE": float(unc.expected_calibration_error(probs, labels, num_bins=15)),
                "Brier": float(unc.brier_score(probs, labels)),
            }


        rows = {"deterministic": metrics(det_lp, y_test),
                f"MC dropout, T={NUM_SAMPLES}": metrics(mc_lp, y_test)}
        print(f"{'':>22}" + "".join(f"{m:>10}" for m in rows["deterministic"]))
        for name, row in rows.items():
            print(f"{name:>22}" + "".join(f"{v:10.4f}" for v in row.values()))
        '''),
        md(r'''
        The same numbers without holding all `T` samples in memory: `predictive_classification`
        streams the samples in chunks and returns every summary at once.
        '''),
        code(r'''
        summary = jax.jit(functools.partial(
            mc.predictive_classification, log_probs_fn, num_samples=NUM_SAMPLES,
            chunk_size=max(1, NUM_SAMPLES // 4)))(mc_key, x_test)
        print("streamed == stacked (float32 rounding):",
              bool(jnp.allclose(summary.mean_log_probs, mc_lp, atol=1e-5)))
        print("fields:", ", ".join(summary._fields))
        '''),
        md(r'''
        ### Reliability diagrams

        Test signals are binned by confidence (the top probability); a calibrated model's
        bars follow the diagonal. The expected calibration error (ECE) is the bars' mean
        distance from it, weighted by the bins' sizes.
        '''),
        code(r'''
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        plots.reliability_diagram(jnp.exp(det_lp), y_test, ax=axes[0], title="deterministic")
        plots.reliability_diagram(jnp.exp(mc_lp) / jnp.exp(mc_lp).sum(-1, keepdims=True), y_test,
                                  ax=axes[1], title=f"MC dropout, T={NUM_SAMPLES}")
        plt.tight_layout()
        plt.show()
        '''),
        md(r'''
        **Reading them.** A bar above the diagonal means the model is under-confident in that
        bin, below it over-confident. With light dropout (0.05 spatial, 0.1 before the
        classifier) and a long run, the deterministic network ends up over-confident on test
        signals, and averaging the MC passes lowers its NLL and ECE at the same accuracy
        (the numbers printed above). With heavy dropout (0.5 before the classifier) the
        deterministic network is already well calibrated and MC averaging makes it
        *under*-confident instead: MC dropout's calibration gains need an over-confident
        network. What it adds in every case is the disagreement between its passes, used
        next.
        '''),
        md(r'''
        ## Uncertainty in and out of distribution

        Three shifts the network never saw in training (as in `experiments/shifts.py`):

        * **noise**: white Gaussian noise with the data's standard deviation (SNR 1);
        * **translation**: every signal moved by a quarter of its length, zero fill;
        * **reversal**: time reversed: the same local statistics, unseen shapes.

        For each we compute the MC **predictive entropy** `H[p̄]` (total uncertainty) and the
        **mutual information** `H[p̄] - E_t H[p_t]` (BALD: the disagreement between the
        passes, the model's epistemic uncertainty), and the AUROC with which each score tells
        shifted signals from test signals (0.5: not at all, 1: perfectly).
        '''),
        code(r'''
        shift_key = jax.random.key(SEED + 2)
        x_np = np.asarray(x_test, np.float32)
        translated = np.zeros_like(x_np)
        translated[:, x_np.shape[1] // 4:] = x_np[:, : -(x_np.shape[1] // 4)]
        shifted = {
            "noise": x_np + x_np.std() * np.asarray(jax.random.normal(shift_key, x_np.shape)),
            "translation": translated,
            "reversal": np.ascontiguousarray(x_np[:, ::-1]),
        }


        def scores(samples, det_lp):
            return {
                "MC entropy": np.asarray(unc.predictive_entropy(samples)),
                "MC mutual information": np.asarray(unc.mutual_information(samples)),
                "deterministic entropy": np.asarray(unc.predictive_entropy(det_lp[None])),
            }


        in_scores = scores(samples, det_lp)
        out_scores = {}
        labels = np.r_[np.zeros(len(x_np)), np.ones(len(x_np))].astype(np.int32)
        print(f"{'shift':>12} {'MC accuracy':>12}" + "".join(f"{s:>24}" for s in in_scores))
        for i, (name, x_shift) in enumerate(shifted.items()):
            s = mc_sample(jax.random.fold_in(mc_key, i + 1), x_shift)
            out_scores[name] = scores(s, deterministic(x_shift))
            acc = float(np.mean(np.asarray(unc.mean_log_probs(s)).argmax(-1) == np.asarray(y_test)))
            aurocs = [float(unc.auroc(np.r_[in_scores[k], out_scores[name][k]], labels))
                      for k in in_scores]
            print(f"{name:>12} {acc:12.3f}" + "".join(f"{'AUROC ' + f'{a:.3f}':>24}"
                                                    for a in aurocs))
        '''),
        md(r'''
        In the stored run the mutual information tells noisy signals from test signals best
        (AUROC about 0.94, against 0.63 for the entropy of the deterministic prediction).
        Translated and reversed signals are harder (about 0.7 for every score): the network
        stays confident, and wrong, on many of them, which no score computed from its
        outputs can see.
        '''),
        code(r'''
        fig, axes = plt.subplots(2, 3, figsize=(14, 6.5))
        for col, name in enumerate(shifted):
            for row, score in enumerate(("MC entropy", "MC mutual information")):
                plots.uncertainty_histograms(in_scores[score], out_scores[name][score],
                                             ("test", name), ax=axes[row, col], xlabel=score,
                                             title=f"{score}: test vs {name}")
        plt.tight_layout()
        plt.show()
        '''),
        md(r'''
        ## How many samples?

        The MC estimate uses the first `T` passes of the same draw (`samples[:T]`), so the
        curves show how the metrics settle as passes are added; the dashed line is the
        deterministic network.
        '''),
        code(r'''
        counts = [t for t in (1, 2, 3, 5, 10, 20, 30, 50, 100) if t <= NUM_SAMPLES]
        curves = [metrics(unc.mean_log_probs(samples[:t]), y_test) for t in counts]
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        for ax, name in zip(axes, ("accuracy", "NLL", "ECE"), strict=True):
            plots.metric_vs_samples(counts, {"MC dropout": [c[name] for c in curves]}, ax=ax,
                                    title=name, ylabel=name)
            ax.axhline(rows["deterministic"][name], color="k", ls="--", label="deterministic")
            ax.legend()
        plt.tight_layout()
        plt.show()
        for t, c in zip(counts, curves, strict=True):
            print(f"T={t:4d}: accuracy {c['accuracy']:.4f}, NLL {c['NLL']:.4f}, ECE {c['ECE']:.4f}")
        '''),
        md(r'''
        The main experiment, `python -m experiments.mc_dropout --workdir /tmp/mc`, runs the
        same comparison at full size with checkpoints, JSON results and more models.
        '''),
    ]


# --------------------------------------------------------------------------------------
# 03: CIFAR-10 CNN, data parallel.
# --------------------------------------------------------------------------------------

CIFAR = "03_cifar10_cnn.ipynb"


def cifar() -> list:
    return header(CIFAR, "A dropout CNN on CIFAR-10, data parallel over every core", r"""
        ResNet-20 (or AlexNet for CIFAR) with dropout, trained on CIFAR-10 with the batch
        split over **every accelerator core** (`jax.devices()`: 8 on a TPU v2-8 runtime, 1
        on a GPU runtime), then evaluated with Monte-Carlo dropout. `jdrop.train` builds a
        one-axis `Mesh` over all devices, shards each global batch over it and keeps the
        parameters replicated; the same code runs on CPU, GPU and TPU.

        **Data.** On Colab CIFAR-10 comes from TensorFlow Datasets (downloaded once). Without
        a network (locally, in CI) TFDS cannot download; the notebook then falls back to
        Fashion-MNIST from local files, padded to 32x32 and repeated over 3 channels, and
        says so below.
        """) + [
        install_cell(),
        code(r'''
        %matplotlib inline
        import functools
        import time

        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from jdrop import mc
        from jdrop import uncertainty as unc
        from jdrop.data import ArrayDataset, DataNotFoundError, batches, load_dataset
        from jdrop.nn._apply import pure_apply
        from jdrop.models._cnn import AlexNet
        from jdrop.models._resnet import resnet20
        from jdrop.train import (
            TrainConfig,
            classification_loss,
            make_mesh,
            make_optimizer,
            random_crop,
            random_flip,
            train,
        )

        print("jax", jax.__version__, "| backend:", jax.default_backend())
        for d in jax.devices():
            print("  ", d)
        '''),
        params_cell(r'''
        MODEL = "resnet20"  # "resnet20" (BatchNorm, 0.27M parameters) or "alexnet" (CIFAR AlexNet)
        HEAD_RATE = 0.3  # ResNet-20: dropout on the pooled features before the classifier
        FC_RATE = 0.5  # AlexNet: dropout after each hidden dense layer
        # Full size on a GPU or TPU runtime; a few minutes' worth on a CPU.
        ON_ACCELERATOR = jax.default_backend() != "cpu"
        NUM_EPOCHS = 1 if SMOKE else (30 if ON_ACCELERATOR else 2)
        MAX_TRAIN = 256 if SMOKE else (None if ON_ACCELERATOR else 5000)  # None: all images
        MAX_TEST = 128 if SMOKE else (None if ON_ACCELERATOR else 2000)  # None: all images
        PER_DEVICE_BATCH = 16 if SMOKE else 64  # the global batch is this x jax.device_count()
        LEARNING_RATE = 0.1  # SGD with Nesterov momentum 0.9, cosine decay, 1-epoch warm-up
        WEIGHT_DECAY = 5e-4
        NUM_SAMPLES = 4 if SMOKE else 20  # T, the MC-dropout passes at the end
        SEED = 0
        '''),
        md(r'''
        ## Data

        `jdrop.data.load_dataset("cifar10")` asks TFDS (`tfds.data_source`, no TensorFlow
        needed); on Colab it may download (`download=True`). Images are float32 in `[0, 1]`,
        channels last.
        '''),
        code(r'''
        CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
        try:
            data = load_dataset("cifar10", download=ON_COLAB)
            FALLBACK = False
            print(f"CIFAR-10 from {data.source}")
        except DataNotFoundError as error:
            FALLBACK = True
            print("NOTE: CIFAR-10 is not available here (TFDS cannot download without a network):")
            print("  ", str(error).splitlines()[1].strip())
            data = load_dataset("fashion_mnist")
            CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat",
                       "sandal", "shirt", "sneaker", "bag", "ankle boot")
            print(f"NOTE: using Fashion-MNIST instead, from {data.source}: 28x28x1 images "
                  "padded to 32x32 with zeros and repeated over 3 channels, so that the CIFAR "
                  "model runs unchanged. The accuracies below are Fashion-MNIST's, not CIFAR-10's.")


        def as_cifar_shape(images):
            if images.shape[1:] == (32, 32, 3):
                return images
            pad = (32 - images.shape[1]) // 2
            images = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            return np.repeat(images, 3, axis=-1)


        def take(split, limit):
            limit = len(split) if limit is None else min(limit, len(split))
            return as_cifar_shape(split["inputs"][:limit]), np.asarray(split["labels"][:limit])


        x_train, y_train = take(data.train, MAX_TRAIN)
        x_test, y_test = take(data.test, MAX_TEST)
        mean = x_train.mean(axis=(0, 1, 2))
        std = x_train.std(axis=(0, 1, 2))
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
        print(f"train {x_train.shape}, test {x_test.shape}, {NUM_EPOCHS} epoch(s)")

        fig, axes = plt.subplots(1, 8, figsize=(12, 1.9))
        for ax, image, label in zip(axes, x_train, y_train, strict=False):
            ax.imshow(np.clip(image * std + mean, 0, 1))
            ax.set_title(CLASSES[label], fontsize=8)
            ax.axis("off")
        plt.show()
        '''),
        md(r'''
        ## Model and data-parallel training

        The global batch is `PER_DEVICE_BATCH x jax.device_count()`: `jdrop.train.train`
        places each batch's rows on the devices of a `"data"` mesh axis (a `NamedSharding`)
        and replicates the parameters, so XLA runs one copy of the step per core and
        all-reduces the gradients. Augmentation (random 4-pixel crops and horizontal flips)
        and dropout draw from the step's key, split so they never share one.
        '''),
        code(r'''
        num_devices = jax.device_count()
        mesh = make_mesh()  # a "data" axis over every device
        global_batch = PER_DEVICE_BATCH * num_devices
        print(f"mesh {dict(mesh.shape)}: global batch {global_batch} = "
              f"{PER_DEVICE_BATCH} per device x {num_devices} device(s)")

        rngs = nnx.Rngs(SEED)
        if MODEL == "resnet20":
            model = resnet20(num_classes=10, head_rate=HEAD_RATE, rngs=rngs)
        elif MODEL == "alexnet":
            model = AlexNet(variant="cifar", fc_rate=FC_RATE, rngs=rngs)
        else:
            raise ValueError(f"MODEL must be 'resnet20' or 'alexnet', got {MODEL!r}")
        uses_batchnorm = MODEL == "resnet20"
        num_params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
        print(f"{MODEL}: {num_params / 1e6:.2f}M parameters")

        base_loss = classification_loss(train_flag=uses_batchnorm)


        def loss_fn(model, batch, key, carry):
            if key is not None:  # training: augment, then dropout with its own key
                aug_key, key = jax.random.split(key)
                crop_key, flip_key = jax.random.split(aug_key)
                images = random_flip(flip_key, random_crop(crop_key, batch["inputs"], 4))
                batch = dict(batch, inputs=images)
            return base_loss(model, batch, key, carry)


        steps_per_epoch = len(x_train) // global_batch
        tx = make_optimizer("sgd", LEARNING_RATE, momentum=0.9, nesterov=True,
                            weight_decay=WEIGHT_DECAY, schedule="cosine",
                            warmup_steps=min(steps_per_epoch, NUM_EPOCHS * steps_per_epoch - 1),
                            total_steps=NUM_EPOCHS * steps_per_epoch)
        train_set = ArrayDataset({"inputs": x_train.astype(np.float32),
                                  "labels": y_train.astype(np.int32)})
        batch_times = []  # when each batch is asked for: the step rate, compilation excluded


        def batches_fn(epoch, start_step):
            for batch in batches(train_set, global_batch, seed=SEED, epoch=epoch,
                                 start_step=start_step):
                batch_times.append(time.perf_counter())
                yield batch


        start = time.perf_counter()
        result = train(model, tx, loss_fn, batches_fn,
                       TrainConfig(num_epochs=NUM_EPOCHS, seed=SEED, progress=False,
                                   log_every=max(1, steps_per_epoch // 2)), mesh=mesh)
        jax.block_until_ready(result.state.params)
        end = time.perf_counter()
        model = result.model
        for record in result.history:
            print(f"epoch {record['epoch']:2d} step {record['step']:5d}: "
                  f"loss {record['loss']:.3f}, accuracy {record['accuracy']:.3f} "
                  "(training batches)")
        total = result.step * global_batch
        print(f"{result.step} steps, {total} images in {end - start:.1f} s "
              f"(compilation included): {total / (end - start):.0f} images/s")
        if result.step > 2:  # the first step compiles; time the others
            steady = (result.step - 1) * global_batch / (end - batch_times[1])
            print(f"after the first (compiling) step: {steady:.0f} images/s on "
                  f"{num_devices} {jax.default_backend()} device(s), "
                  f"{steady / num_devices:.0f} images/s per device")
        '''),
        md(r'''
        ## Evaluation: deterministic and Monte-Carlo dropout

        For MC dropout BatchNorm uses its running averages (`train=False`) while dropout
        stays on (a key). ResNet-20's only dropout is before the classifier, so under `vmap`
        over keys the convolutional trunk is computed **once** and only the last layer `T`
        times. `jdrop.mc.predictive_classification` shards the test batch over the same
        mesh (`batch_axis_name="data"`); each device summarises its own images.
        '''),
        code(r'''
        apply_fn, state = pure_apply(model)
        kwargs = {"train": False} if uses_batchnorm else {}


        def logits_fn(key, x):
            return apply_fn(state, key, x, **kwargs)


        def evaluate_in_chunks(fn, x, chunk):
            return jnp.concatenate([fn(x[i:i + chunk]) for i in range(0, len(x), chunk)])


        # Chunks of the test set that split evenly over the devices.
        chunk = max(num_devices, 500 // num_devices * num_devices)
        usable = len(x_test) // num_devices * num_devices
        x_eval, y_eval = x_test[:usable], y_test[:usable]

        deterministic = jax.jit(lambda x: jax.nn.log_softmax(logits_fn(None, x)))
        predictive = jax.jit(functools.partial(
            mc.predictive_classification, logits_fn, num_samples=NUM_SAMPLES,
            mesh=mesh, batch_axis_name="data"))
        mc_key = jax.random.key(SEED + 1)

        start = time.perf_counter()
        det_lp = evaluate_in_chunks(deterministic, x_eval, chunk)
        mc_lp = evaluate_in_chunks(lambda x: predictive(mc_key, x).mean_log_probs, x_eval, chunk)
        mc_lp.block_until_ready()
        print(f"evaluated {len(x_eval)} test images in {time.perf_counter() - start:.1f} s")

        for name, lp in (("deterministic", det_lp), (f"MC dropout, T={NUM_SAMPLES}", mc_lp)):
            probs = jnp.exp(lp) / jnp.exp(lp).sum(-1, keepdims=True)
            print(f"{name:>20}: accuracy {float(unc.accuracy(probs, y_eval)):.4f}, "
                  f"NLL {float(unc.nll_from_log_probs(lp, y_eval)):.4f}, "
                  f"ECE {float(unc.expected_calibration_error(probs, y_eval)):.4f}")
        if FALLBACK:
            print("(Fashion-MNIST fallback: see the note at the top)")
        '''),
        md(r'''
        ## The most uncertain test images

        The test images with the highest MC predictive entropy, with the predicted class and
        its probability.
        '''),
        code(r'''
        probs = np.exp(np.asarray(mc_lp))
        entropy = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(-1)
        order = np.argsort(-entropy)[:8]
        fig, axes = plt.subplots(1, 8, figsize=(13, 2.3))
        for ax, i in zip(axes, order, strict=True):
            ax.imshow(np.clip(x_eval[i] * std + mean, 0, 1))
            ax.set_title(f"{CLASSES[probs[i].argmax()]} {probs[i].max():.2f}\n"
                         f"(true: {CLASSES[y_eval[i]]})", fontsize=7)
            ax.axis("off")
        plt.show()
        '''),
    ]


# --------------------------------------------------------------------------------------
# 04: RNN language model.
# --------------------------------------------------------------------------------------

LM = "04_rnn_language_model.ipynb"


def language_model() -> list:
    return header(LM, "A variational-dropout LSTM language model on Tiny Shakespeare", r"""
        A character-level LSTM language model (Karpathy's char-rnn task) trained with and
        without **variational dropout** (Gal & Ghahramani, 2016: one mask per sequence,
        the same at every time step, on the inputs, the outputs and the recurrent
        connections). We compare validation **bits per character** and sample text with
        explicit keys.

        **Data.** On Colab Tiny Shakespeare comes from TFDS (`tiny_shakespeare`); without a
        network the notebook falls back to a local copy of the same text (`input.txt`,
        1,115,394 characters) and says so.
        """) + [
        install_cell(),
        code(r'''
        %matplotlib inline
        import dataclasses
        import math
        import time

        import jax
        import matplotlib.pyplot as plt
        import numpy as np
        import optax
        from flax import nnx

        from jdrop.data import (
            DataNotFoundError,
            lm_batches,
            load_char_corpus,
            load_tfds_char_corpus,
            num_lm_batches,
        )
        from jdrop.models._generate import generate
        from jdrop.models._lm_configs import get_lm_config
        from jdrop.models._rnn_lm import RNNLanguageModel, count_params
        from jdrop.train import TrainConfig, make_optimizer, train

        print("jax", jax.__version__, "| backend:", jax.default_backend(),
              "| devices:", jax.device_count())
        '''),
        params_cell(r'''
        # Full size on a GPU or TPU runtime; a few minutes' worth on a CPU.
        ON_ACCELERATOR = jax.default_backend() != "cpu"
        HIDDEN = 32 if SMOKE else (512 if ON_ACCELERATOR else 256)  # embedding and LSTM units
        DROPOUT = 0.25  # variational dropout on inputs, outputs and recurrent connections
        BATCH_SIZE = 16 if SMOKE else (64 if ON_ACCELERATOR else 32)  # multiple of the devices
        SEQ_LEN = 32 if SMOKE else (100 if ON_ACCELERATOR else 64)  # truncated BPTT length
        # Training text: a prefix of the corpus (None: all of it). A short prefix trains
        # quickly on a CPU and lets the model without dropout over-fit within minutes.
        MAX_TRAIN_CHARS = 6_000 if SMOKE else (None if ON_ACCELERATOR else 200_000)
        NUM_EPOCHS = 2 if SMOKE else (20 if ON_ACCELERATOR else 5)
        MAX_VALID_CHARS = 4_000 if SMOKE else None  # validation characters used (None: all)
        LEARNING_RATE = 2e-3  # Adam, cosine decay, gradients clipped to norm 5
        SAMPLE_CHARS = 100 if SMOKE else 400
        SEED = 0
        '''),
        md(r'''
        ## Data

        `load_tfds_char_corpus` reads TFDS's `tiny_shakespeare` (train / validation / test:
        1,003,854 / 55,770 / 55,770 characters); `load_char_corpus` splits a local copy of
        the same text the same way. Characters are integer ids of a 65-symbol vocabulary.
        '''),
        code(r'''
        try:
            corpus = load_tfds_char_corpus("tiny_shakespeare", download=ON_COLAB)
        except DataNotFoundError as error:
            print("NOTE: TFDS cannot provide tiny_shakespeare here (no network):")
            print("  ", str(error).splitlines()[1].strip())
            corpus = load_char_corpus()
            print(f"NOTE: using the local copy of the same text instead: {corpus.source}")
        vocab = corpus.vocab
        train_tokens = np.asarray(corpus.train["tokens"])[:MAX_TRAIN_CHARS]
        valid_tokens = np.asarray(corpus.validation["tokens"])[:MAX_VALID_CHARS]
        print(f"{len(train_tokens):,} training characters (of {len(corpus.train):,}), "
              f"{len(valid_tokens):,} validation characters, vocabulary of {len(vocab)}")
        print(repr(vocab.decode(train_tokens[:200])))
        '''),
        md(r'''
        ## Two models

        Both are `jdrop.nn.lm_configs`' `char_shakespeare` configuration (two LSTM layers,
        embedding and hidden size `HIDDEN`): one with variational dropout `DROPOUT` on the
        inputs, between the layers, on the outputs and on `h_{t-1}` in the recurrence, one
        with no dropout at all.
        '''),
        code(r'''
        base = get_lm_config("char_shakespeare", vocab_size=len(vocab), embed_size=HIDDEN,
                             hidden_sizes=(HIDDEN, HIDDEN))
        configs = {
            "variational dropout": dataclasses.replace(
                base, input_dropout=DROPOUT, hidden_dropout=DROPOUT, output_dropout=DROPOUT,
                recurrent_dropout=DROPOUT),
            "no dropout": dataclasses.replace(
                base, input_dropout=0.0, hidden_dropout=0.0, output_dropout=0.0,
                recurrent_dropout=0.0),
        }
        for name, config in configs.items():
            model = nnx.eval_shape(lambda config=config: RNNLanguageModel(config, rngs=nnx.Rngs(0)))
            print(f"{name:>20}: {count_params(model):,} parameters; dropout: input "
                  f"{config.input_dropout}, between layers {config.hidden_dropout}, output "
                  f"{config.output_dropout}, recurrent {config.recurrent_dropout}")
        '''),
        md(r'''
        ## Training with `jdrop.train`

        The batches are `lm_batches`' contiguous layout: row `b` of batch `i + 1` continues
        row `b` of batch `i`, so the LSTM state is carried from one batch to the next (the
        loop's `carry`, reset at each epoch) and gradients are truncated at batch boundaries.
        The validation text is evaluated after every epoch. The loss is in nats per
        character; bits per character = nats / ln 2.
        '''),
        code(r'''
        steps_per_epoch = num_lm_batches(len(train_tokens), BATCH_SIZE, SEQ_LEN)
        total_steps = NUM_EPOCHS * steps_per_epoch
        print(f"{NUM_EPOCHS} epochs of {steps_per_epoch} batches of {BATCH_SIZE} x {SEQ_LEN} "
              f"characters on {jax.device_count()} device(s)")


        def batches_fn(epoch, start_step):
            return lm_batches(train_tokens, BATCH_SIZE, SEQ_LEN, start_step=start_step)


        def valid_batches():
            return lm_batches(valid_tokens, BATCH_SIZE, SEQ_LEN)


        def loss_fn(model, batch, key, carry):
            logits, state = model(batch["inputs"], key=key, state=carry)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]).mean()
            state = jax.lax.stop_gradient(state)
            return loss, ({"bpc": loss / math.log(2)}, state)


        models, histories = {}, {}
        for i, (name, config) in enumerate(configs.items()):
            model = RNNLanguageModel(config, rngs=nnx.Rngs(SEED))
            # Unit-scale embeddings (PyTorch's nn.Embedding default) train a character model
            # much faster than LMConfig's default U(-0.1, 0.1), AWD-LSTM's choice for words.
            model.embedding[...] = jax.random.normal(jax.random.key(SEED), model.embedding.shape)
            init_carry = lambda model=model: jax.tree.map(np.asarray, model.init_state(BATCH_SIZE))
            tx = make_optimizer("adam", LEARNING_RATE, clip_norm=5.0, schedule="cosine",
                                total_steps=total_steps)
            start = time.perf_counter()
            result = train(model, tx, loss_fn, batches_fn,
                           TrainConfig(num_epochs=NUM_EPOCHS, seed=SEED + i, progress=False,
                                       log_every=steps_per_epoch),
                           eval_sets={"valid": valid_batches}, init_carry=init_carry)
            seconds = time.perf_counter() - start
            models[name], histories[name] = result.model, result.history
            valid = [r for r in result.history if r["split"] == "valid"]
            print(f"{name:>20}: {result.step} steps in {seconds:.0f} s "
                  f"({result.step * BATCH_SIZE * SEQ_LEN / seconds:,.0f} characters/s), "
                  f"validation {valid[-1]['bpc']:.3f} bits/char")
        '''),
        code(r'''
        fig, ax = plt.subplots(figsize=(7, 4))
        for i, (name, history) in enumerate(histories.items()):
            for split, style in (("train", ":"), ("valid", "-")):
                rows = [r for r in history if r["split"] == split]
                ax.plot([r["step"] for r in rows], [r["bpc"] for r in rows], style, marker="o",
                        color=f"C{i}", label=f"{name}, {split}")
        ax.set_xlabel("training step")
        ax.set_ylabel("bits per character")
        ax.set_title("Tiny Shakespeare, character LSTM")
        ax.legend()
        plt.show()
        for name, history in histories.items():
            print(f"{name:>20}: " + ", ".join(
                f"step {r['step']}: {r['bpc']:.3f}" for r in history if r["split"] == "valid"))
        '''),
        md(r'''
        Dropout is a regulariser: it slows the fit of the training text (the dotted curves
        are measured with dropout on) and pays off once a network over-fits, i.e. when the
        validation curve of the model without dropout turns up while its training curve
        keeps falling. With the CPU configuration (a few hundred steps) that point is not
        reached and the model without dropout is as good or better; the GPU/TPU configuration
        (2 x 512 units, 20 epochs of the full text) is the regime of Zaremba et al. (2014) and
        Gal & Ghahramani (2016), where dropout is expected to win.

        ## Sampling text with explicit keys

        `jdrop.models._generate.generate(model, key, prompt, num_steps, temperature)` runs the
        model deterministically (no dropout) and draws character `s` with
        `fold_in(key, s)`: the same key gives the same text, another key another text.
        '''),
        code(r'''
        prompt = vocab.encode("ROMEO:\n")
        sample = nnx.jit(generate, static_argnums=3)
        key = jax.random.key(SEED + 10)
        model = models["variational dropout"]
        for temperature in (0.5, 1.0):
            text = vocab.decode(np.asarray(sample(model, key, prompt, SAMPLE_CHARS, temperature)))
            print(f"--- temperature {temperature} ---\nROMEO:\n{text}\n")
        again = sample(model, key, prompt, SAMPLE_CHARS, 1.0)
        other = sample(model, jax.random.fold_in(key, 1), prompt, SAMPLE_CHARS, 1.0)
        first = sample(model, key, prompt, SAMPLE_CHARS, 1.0)
        print("same key, same text:", bool((again == first).all()),
              "| another key, another text:", bool((other != first).any()))
        '''),
    ]


NOTEBOOKS = {
    QUICKSTART: quickstart,
    MC: mc_dropout,
    CIFAR: cifar,
    LM: language_model,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` with its cells and no outputs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = NOTEBOOKS[name]()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["colab"] = {"provenance": [], "name": name}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


# Notebooks whose kernel keeps the host's CPU devices as they are (one on a plain machine)
# instead of eight virtual ones. Training over several virtual CPU devices can deadlock on a
# machine with few cores: with asynchronous dispatch one device starts the next step's
# all-gather while another still needs a worker thread for the current step, and XLA:CPU
# aborts after its collective timeout ("Expected 8 threads to join the rendezvous").
# 01_quickstart has no cross-device collective and sets eight devices itself.
SINGLE_DEVICE = (MC, CIFAR, LM)
_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def kernel_env(name: str, *, smoke: bool) -> dict[str, str]:
    """The environment notebook ``name`` runs in here: CPU only, offline, smoke or full."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith(_DEVICE_FLAG)]
    if name not in SINGLE_DEVICE:
        flags.append(f"{_DEVICE_FLAG}=8")
    env["XLA_FLAGS"] = " ".join(flags)
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("MPLBACKEND", None)  # let the kernel use its inline backend
    if smoke:
        env["JDROP_SMOKE"] = "1"
    else:
        env.pop("JDROP_SMOKE", None)
    return env


def execute(nb: nbformat.NotebookNode, name: str, *, smoke: bool, timeout: int = 900):
    """Runs notebook ``name`` top to bottom in a fresh kernel (cwd: this folder)."""
    from nbclient import NotebookClient

    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, coalesce_streams=True,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env=kernel_env(name, smoke=smoke))
    return nb


def strip_volatile(nb: nbformat.NotebookNode) -> None:
    """Drops the execution metadata that changes on every run (timings)."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="substrings of the notebooks to write")
    parser.add_argument("--execute", action="store_true", help="run and store outputs")
    parser.add_argument("--smoke", action="store_true", help="run with JDROP_SMOKE=1")
    args = parser.parse_args(argv)
    for name in NOTEBOOKS:
        if args.only and not any(s in name for s in args.only):
            continue
        nb = build(name)
        if args.execute:
            start = time.perf_counter()
            execute(nb, name, smoke=args.smoke)
            strip_volatile(nb)
            print(f"{name}: ran in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
