# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jdrop-dev/jdrop/blob/main/colab/01_quickstart.ipynb)
#
# # jdrop quickstart: dropout with explicit keys
#
#
# jdrop is dropout for JAX written as pure functions: **key first, then the data, then
# the rate** (the drop probability). This notebook shows
#
# 1. explicit PRNG keys: `jax.random.key`, `split`, `fold_in`;
# 2. `jdrop.dropout` and its variants, with pictures of their masks;
# 3. the expectation and the variance of dropout, checked numerically;
# 4. `jax.vmap` over keys: an ensemble of dropout networks in one call;
# 5. the same mask on one device and sharded over all of `jax.devices()`.
#
# It runs on any Colab runtime (CPU, GPU or TPU) in well under a minute.

# %%
# Set-up. On Colab, install jdrop from GitHub; elsewhere (locally, in CI) it is
# already installed and nothing is fetched.
import os
import subprocess
import sys

ON_COLAB = "google.colab" in sys.modules
if ON_COLAB:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q",
         "jdrop[experiments] @ git+https://github.com/jdrop-dev/jdrop"],
        check=True,
    )

# On a CPU-only runtime, split the host into 8 virtual devices so that the sharding
# section has devices to shard over. Only CPU devices are affected (a GPU or TPU
# runtime keeps its own devices), and it must happen before JAX is imported.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()

# %%
# %matplotlib inline
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jdrop

print("jax", jax.__version__, "| backend:", jax.default_backend(),
      "| devices:", jax.device_count())

# %% tags=["parameters"]
# Parameters. JDROP_SMOKE=1 (set by tests/test_notebooks.py) switches to a small
# configuration that runs the whole notebook in seconds on a CPU.
SMOKE = os.environ.get("JDROP_SMOKE") == "1"

NUM_DRAWS = 200_000 if SMOKE else 2_000_000  # values per rate in the statistics check
NUM_MEMBERS = 200 if SMOKE else 1000  # ensemble size of the vmap section

# %% [markdown]
# ## 1. Explicit keys
#
# JAX has no global random state: every random function takes a key. A key is split
# into independent keys, and `fold_in(key, i)` derives the key of step `i` (a training
# loop uses `fold_in(key, step)`, so a resumed run draws the same masks). The same key
# always gives the same bits.

# %%
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

# %% [markdown]
# ## 2. `jdrop.dropout` and its variants
#
# `jdrop.dropout(key, x, rate)` keeps each element with probability `1 - rate` and
# scales the kept ones by `1 / (1 - rate)` (inverted dropout), so nothing changes at
# test time. `rate=0` or `deterministic=True` returns `x` untouched; `rate=1` returns
# zeros (never NaN). The variants differ only in **which elements share a mask
# value**:
#
# | function | drops |
# |---|---|
# | `dropout(key, x, rate)` | single elements |
# | `dropout(..., broadcast_dims=(1,))` | the same elements at every index of axis 1 |
# | `spatial_dropout(key, x, rate)` | whole channels (feature maps) of each example |
# | `dropblock(key, x, rate, block_size=b)` | `b x b` squares of each feature map |
# | `locked_dropout(key, x, rate)` | the same features at every time step (variational) |
# | `drop_path(key, x, rate)` | whole examples (stochastic depth of a residual branch) |
# | `gaussian_dropout(key, x, rate)` | nothing: multiplies by `N(1, rate/(1-rate))` noise |

# %%
x = jnp.arange(1.0, 7.0)
print("dropout 0.5:   ", jdrop.dropout(key, x, 0.5))
print("rate 0:        ", jdrop.dropout(key, x, 0.0))
print("deterministic: ", jdrop.dropout(None, x, 0.5, deterministic=True))
print("rate 1:        ", jdrop.dropout(key, x, 1.0))
print("keep mask:     ", jdrop.keep_mask(key, x.shape, 0.5))

# %% [markdown]
# Below, each picture is a mask: the input is all ones, white is kept, black dropped.

# %%
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

# %% [markdown]
# ## 3. Expectation and variance, checked numerically
#
# With `m ~ Bernoulli(1 - p)` and `y = m x / (1 - p)`:
#
# $$\mathbb{E}[y] = x, \qquad \mathrm{Var}[y] = x^2 \frac{p}{1 - p}.$$
#
# Gaussian dropout multiplies by `N(1, p / (1 - p))` noise: the same two moments.
# Below, each row draws `NUM_DRAWS` values of `y` for `x = 2` and compares the sample
# moments with the formulas; the check allows 5 standard errors.

# %%
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

# %% [markdown]
# The gradient of dropout is the same mask, scaled: `dy/dx = m / (1 - p)`.

# %%
x = jnp.arange(1.0, 7.0)
grad = jax.grad(lambda x: jdrop.dropout(key, x, 0.5).sum())(x)
print("mask / (1 - p):", jdrop.keep_mask(key, x.shape, 0.5) / 0.5)
print("gradient:      ", grad)

# %% [markdown]
# ## 4. `jax.vmap` over keys: an ensemble
#
# Because the key is an argument, `jax.vmap` over a batch of keys runs many dropout
# networks at once: this is Monte-Carlo dropout (`jdrop.mc` wraps it with chunking and
# sharding). Each member is exactly what one call with its key gives.

# %%
keys = jax.random.split(jax.random.key(2), NUM_MEMBERS)
x = jnp.linspace(-1.0, 1.0, 5)
ensemble = jax.vmap(jdrop.dropout, in_axes=(0, None, None))(keys, x, 0.5)
print("ensemble shape:", ensemble.shape)
same = bool((ensemble[3] == jdrop.dropout(keys[3], x, 0.5)).all())
print("member 3 == dropout(keys[3], x):", same)
print("x:            ", x)
print("ensemble mean:", np.round(np.asarray(ensemble.mean(0)), 3))

# %% [markdown]
# The same with a small random network `f(key, x)`: a two-layer MLP with dropout on its
# hidden units (weights untrained; the point is the mechanics).
# `broadcast_dims=(0,)` shares one mask across the batch of inputs, so each key selects
# one subnetwork, a whole function of `x`; `vmap` over keys gives the ensemble. The
# spread of its members is what MC dropout reads as uncertainty.

# %%
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

# %% [markdown]
# ## 5. One mask, any number of devices
#
# jdrop's masks are keyed by each element's global position (a counter hash), so the
# mask of an array does not depend on how the array is split over devices, and drawing
# it never gathers the array onto one device. Below, the same `jax.jit`-ed function
# runs on one device and on a `NamedSharding` over a `Mesh` of **all** devices
# (8 virtual CPU devices on a CPU runtime, the GPU, or the TPU cores), and the results
# are compared bit for bit.

# %%
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

# %% [markdown]
# ## Where next
#
# * `02_mc_dropout_uncertainty.ipynb`: train a dropout network, then Monte-Carlo
#   dropout for calibrated predictions and out-of-distribution detection.
# * `03_cifar10_cnn.ipynb`: a CNN on CIFAR-10, data parallel over every accelerator
#   core.
# * `04_rnn_language_model.ipynb`: variational LSTM language model on Tiny Shakespeare.
