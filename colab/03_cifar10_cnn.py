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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jdrop-dev/jdrop/blob/main/colab/03_cifar10_cnn.ipynb)
#
# # A dropout CNN on CIFAR-10, data parallel over every core
#
#
# ResNet-20 (or AlexNet for CIFAR) with dropout, trained on CIFAR-10 with the batch
# split over **every accelerator core** (`jax.devices()`: 8 on a TPU v2-8 runtime, 1
# on a GPU runtime), then evaluated with Monte-Carlo dropout. `jdrop.train` builds a
# one-axis `Mesh` over all devices, shards each global batch over it and keeps the
# parameters replicated; the same code runs on CPU, GPU and TPU.
#
# **Data.** On Colab CIFAR-10 comes from TensorFlow Datasets (downloaded once). Without
# a network (locally, in CI) TFDS cannot download; the notebook then falls back to
# Fashion-MNIST from local files, padded to 32x32 and repeated over 3 channels, and
# says so below.

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

# %%
# %matplotlib inline
import functools
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from jdrop import mc, report
from jdrop.data import ArrayDataset, DataNotFoundError, batches, load_dataset
from jdrop.models import AlexNet, param_count, resnet20
from jdrop.nn import pure_apply
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

# %% tags=["parameters"]
# Parameters. JDROP_SMOKE=1 (set by tests/test_notebooks.py) switches to a small
# configuration that runs the whole notebook in seconds on a CPU.
SMOKE = os.environ.get("JDROP_SMOKE") == "1"

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

# %% [markdown]
# ## Data
#
# `jdrop.data.load_dataset("cifar10")` asks TFDS (`tfds.data_source`, no TensorFlow
# needed); on Colab it may download (`download=True`). Images are float32 in `[0, 1]`,
# channels last.

# %%
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

# %% [markdown]
# ## Model and data-parallel training
#
# The global batch is `PER_DEVICE_BATCH x jax.device_count()`: `jdrop.train.train`
# places each batch's rows on the devices of a `"data"` mesh axis (a `NamedSharding`)
# and replicates the parameters, so XLA runs one copy of the step per core and
# all-reduces the gradients. Augmentation (random 4-pixel crops and horizontal flips)
# and dropout draw from the step's key, split so they never share one.

# %%
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
print(f"{MODEL}: {param_count(model) / 1e6:.2f}M parameters")

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

# %% [markdown]
# ## Evaluation: deterministic and Monte-Carlo dropout
#
# For MC dropout BatchNorm uses its running averages (`train=False`) while dropout stays
# on (a key); `key=None, deterministic=True` is the deterministic network. ResNet-20's
# only dropout is before the classifier, so under `vmap` over keys the convolutional trunk
# is computed **once** and only the last layer `T` times.
# `jdrop.mc.predictive_classification` shards the test batch over the same mesh
# (`batch_axis_name="data"`); each device summarises its own images.

# %%
apply_fn, state = pure_apply(model)
kwargs = {"train": False} if uses_batchnorm else {}


def logits_fn(key, x):
    return apply_fn(state, key, x, deterministic=key is None, **kwargs)


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

rows = [[name, *report.classification_metrics(lp, y_eval).values()]
        for name, lp in (("deterministic", det_lp), (f"MC dropout, T={NUM_SAMPLES}", mc_lp))]
print(report.markdown_table(["inference", *report.CLASSIFICATION_METRICS], rows))
if FALLBACK:
    print("(Fashion-MNIST fallback: see the note at the top)")

# %% [markdown]
# ## The most uncertain test images
#
# The test images with the highest MC predictive entropy, with the predicted class and
# its probability.

# %%
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
