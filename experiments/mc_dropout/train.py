"""MC-dropout uncertainty vs deterministic (weight-scaling) inference: the main job.

Trains a CNN with dropout on MNIST-1D (generated in-process: no file, no network) with
:func:`jdrop.train.train`, then compares

* deterministic inference (dropout off: the weight-scaling rule of inverted dropout) with
  MC-dropout inference averaging T = 1..100 stochastic passes (Gal & Ghahramani 2016):
  accuracy, NLL, ECE and Brier score;
* how well the predictive entropy and the mutual information (BALD) of the MC ensemble, and
  the entropy of the deterministic prediction, separate the in-distribution test signals
  from shifted ones (:func:`jdrop.data.apply_shift`: noise, translation, reversal), by AUROC.

:func:`train_and_evaluate` writes ``results.json``, ``results.md`` (printed too), PNG plots
and the training log (``train/metrics.jsonl``, orbax checkpoints: a stopped run resumes)
into the work directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.mc_dropout import config as configs
from jdrop import mc, report
from jdrop import uncertainty as unc
from jdrop.data import SHIFTS, apply_shift, batches, load_dataset
from jdrop.models import MLP, MNIST1DCNN, GRUClassifier, lenet_all, lenet_ip, mnist1d_mlp, resnet20
from jdrop.nn import pure_apply
from jdrop.train import TrainConfig, classification_loss, make_mesh, make_optimizer, train

METRICS = report.CLASSIFICATION_METRICS


def build_model(config: configs.Config, input_shape: tuple[int, ...], num_classes: int):
    """The classifier named by ``config.model`` for inputs ``(N, *input_shape)``."""
    rngs = nnx.Rngs(config.seed)
    name = config.model
    if name == "cnn" and len(input_shape) == 1:
        return MNIST1DCNN(
            num_classes, length=input_shape[0], channels=config.width,
            kernel_sizes=(5, 5, 5), strides=(1, 2, 2), padding=2,
            conv_rate=config.conv_rate, conv_dropout="spatial", head_rate=config.head_rate,
            rngs=rngs,
        )
    if name == "mlp" and len(input_shape) == 1:
        return mnist1d_mlp(hidden=(config.mlp_width, config.mlp_width),
                           input_rate=config.mlp_input_rate,
                           hidden_rate=config.mlp_hidden_rate, rngs=rngs)
    if name == "gru" and len(input_shape) == 1:
        return GRUClassifier(input_shape[0], num_classes, rngs=rngs,
                             hidden_size=config.gru_hidden,
                             recurrent_dropout=config.gru_recurrent_rate,
                             dropout=config.gru_readout_rate)
    if name == "mlp":
        return MLP(int(np.prod(input_shape)), (config.mlp_width, config.mlp_width),
                   num_classes, input_rate=config.mlp_input_rate,
                   hidden_rate=config.mlp_hidden_rate, rngs=rngs)
    if name in ("lenet_all", "lenet_ip") and len(input_shape) == 3:
        make = lenet_all if name == "lenet_all" else lenet_ip
        return make(config.head_rate, num_classes=num_classes, image_size=input_shape[:2],
                    in_channels=input_shape[2], rngs=rngs)
    if name == "resnet20" and len(input_shape) == 3:
        return resnet20(num_classes=num_classes, head_rate=config.head_rate, rngs=rngs)
    raise ValueError(
        f"model={name!r} does not fit inputs of shape {input_shape}: use cnn, mlp or gru for "
        "1-D signals and lenet_all, lenet_ip, mlp or resnet20 for images"
    )


def _is_batchnorm_model(model) -> bool:
    return any(isinstance(m, nnx.BatchNorm) for _, m in nnx.iter_graph(model))


def train_model(config: configs.Config, data, workdir: Path):
    """Trains with jdrop.train (data parallel over every device, checkpointed)."""
    train_set = data.train
    input_shape = train_set["inputs"].shape[1:]
    model = build_model(config, input_shape, data.num_classes)
    steps_per_epoch = len(train_set) // config.batch_size
    tx = make_optimizer(config.optimizer, config.learning_rate, schedule=config.schedule,
                        total_steps=config.num_epochs * steps_per_epoch,
                        weight_decay=config.weight_decay)

    def batches_fn(epoch, start_step):
        return batches(train_set, config.batch_size, seed=config.seed, epoch=epoch,
                       start_step=start_step, process_index=jax.process_index(),
                       process_count=jax.process_count())

    check_resume(config, workdir / "train")
    train_config = TrainConfig(num_epochs=config.num_epochs, seed=config.seed,
                               checkpoint_every=config.checkpoint_every,
                               progress=config.progress, log_every=50)
    loss_fn = classification_loss(train_flag=_is_batchnorm_model(model))
    # Data parallel over as many devices as divide the batch (all 8 of a TPU v2-8 for 128).
    devices = jax.devices()[: math.gcd(config.batch_size, jax.device_count())]
    result = train(model, tx, loss_fn, batches_fn, train_config, workdir=workdir / "train",
                   mesh=make_mesh(devices))
    return result.model


def predictive_fn(model):
    """``fn(key, x) -> log-probabilities``; ``key=None`` is deterministic inference."""
    apply_fn, state = pure_apply(model)
    kwargs = {"train": False} if _is_batchnorm_model(model) else {}

    def fn(key, x):
        logits = apply_fn(state, key, x, deterministic=key is None, **kwargs)
        return jax.nn.log_softmax(logits, axis=-1)

    return fn


def mc_log_probs_fn(fn, config: configs.Config):
    """A jitted ``(key, x) -> (T, N, K)`` log-probabilities of ``config.num_samples`` passes."""
    return jax.jit(lambda key, x: mc.sample(fn, key, x, num_samples=config.num_samples,
                                            chunk_size=config.chunk_size))


def evaluate(model, data, config: configs.Config, key) -> dict:
    """Deterministic vs MC metrics, metric-vs-T curves and shift-detection AUROCs."""
    test = data.test
    limit = config.max_test_examples or len(test)
    x, y = np.asarray(test["inputs"][:limit]), np.asarray(test["labels"][:limit])
    fn = predictive_fn(model)
    deterministic = jax.jit(lambda x: fn(None, x))
    mc_log_probs = mc_log_probs_fn(fn, config)  # compiled once, for the test set and shifts
    det_lp = deterministic(jnp.asarray(x))
    mc_key, shift_key = jax.random.split(key)
    samples = mc_log_probs(mc_key, jnp.asarray(x))
    counts = sorted({t for t in config.sample_counts if t <= config.num_samples}
                    | {config.num_samples})
    curves = {t: report.classification_metrics(unc.mean_log_probs(samples[:t]), y,
                                               num_bins=config.num_bins)
              for t in counts}
    results = {
        "deterministic": report.classification_metrics(det_lp, y, num_bins=config.num_bins),
        "mc": curves[config.num_samples],
        "mc_num_samples": config.num_samples,
        "mc_vs_num_samples": {str(t): m for t, m in curves.items()},
        "num_test_examples": int(limit),
    }
    in_scores = report.uncertainty_scores(samples, det_lp)
    results["shift_detection"], scores = {}, {"in-distribution": in_scores}
    for i, name in enumerate(config.shifts):
        x_shift = apply_shift(name, jax.random.fold_in(shift_key, i), x)
        shifted = mc_log_probs(jax.random.fold_in(mc_key, i + 1), jnp.asarray(x_shift))
        det_shift = deterministic(jnp.asarray(x_shift))
        out_scores = report.uncertainty_scores(shifted, det_shift)
        results["shift_detection"][name] = report.shift_detection(in_scores, out_scores) | {
            "mc_accuracy": float(np.mean(np.asarray(unc.mean_log_probs(shifted)).argmax(-1) == y))
        }
        scores[name] = out_scores
    return results, {"samples": samples, "det": det_lp, "labels": y, "scores": scores}


def markdown(results: dict, config: configs.Config, seconds: float) -> str:
    """The two tables of ``results.md``: metrics of both inferences, then the shifts."""
    det, mcm = results["deterministic"], results["mc"]
    t = results["mc_num_samples"]
    metrics = report.markdown_table(
        ["inference", "accuracy", "NLL", "ECE", "Brier"],
        [["deterministic (weight scaling)", *(det[m] for m in METRICS)],
         [f"MC dropout, T = {t}", *(mcm[m] for m in METRICS)]])
    scores = ("mc_entropy", "mc_mutual_information", "deterministic_entropy", "mc_accuracy")
    shifts = report.markdown_table(
        ["shift", "AUROC MC entropy", "AUROC MC mutual information",
         "AUROC deterministic entropy", "MC accuracy on shifted"],
        [[name, *(row[s if s == "mc_accuracy" else f"auroc_{s}"] for s in scores)]
         for name, row in results["shift_detection"].items()], float_format="{:.3f}")
    return (f"## MC dropout vs deterministic inference: {config.dataset}, {config.model}\n\n"
            f"{results['num_test_examples']} test examples; MC with T = {t} samples; "
            f"{config.num_bins}-bin ECE; wall time {seconds:.0f} s.\n\n{metrics}\n{shifts}")


def save_plots(results: dict, arrays: dict, workdir: Path, config: configs.Config) -> list:
    """Reliability diagrams, metrics vs T and uncertainty histograms as PNG files."""
    plt = report.pyplot()
    paths = []
    y = arrays["labels"]
    mc_probs = np.exp(np.asarray(unc.mean_log_probs(arrays["samples"])))
    det_probs = np.exp(np.asarray(arrays["det"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, probs, title in ((axes[0], det_probs, "deterministic"),
                             (axes[1], mc_probs, f"MC dropout, T={results['mc_num_samples']}")):
        report.reliability_diagram(probs / probs.sum(-1, keepdims=True), y, ax=ax,
                                   num_bins=config.num_bins, title=title)
    paths.append(report.save_figure(fig, workdir / "reliability.png"))

    counts = [int(t) for t in results["mc_vs_num_samples"]]
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.5))
    for ax, metric in zip(axes, METRICS, strict=True):
        values = [results["mc_vs_num_samples"][str(t)][metric] for t in counts]
        report.metric_vs_samples(counts, {"MC dropout": values}, ax=ax, title=metric,
                                 ylabel=metric)
        ax.axhline(results["deterministic"][metric], color="k", linestyle="--",
                   label="deterministic")
        ax.legend()
    paths.append(report.save_figure(fig, workdir / "metrics_vs_samples.png"))

    scores = arrays["scores"]
    for name in config.shifts:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
        for ax, score in zip(axes, ("mc_entropy", "mc_mutual_information"), strict=True):
            report.uncertainty_histograms(scores["in-distribution"][score], scores[name][score],
                                          ("in-distribution", name), ax=ax, xlabel=score,
                                          title=f"{score}: test vs {name}")
        paths.append(report.save_figure(fig, workdir / f"uncertainty_{name}.png"))
    return paths


# Fields that do not change what is trained: a checkpoint resumes whatever they are.
_EVAL_ONLY_FIELDS = frozenset({
    "data_dir", "num_samples", "sample_counts", "chunk_size", "num_bins", "shifts",
    "max_test_examples", "checkpoint_every", "progress", "fresh",
})
CONFIG_FILE = "config.json"


def _training_fields(config: configs.Config) -> dict:
    fields = dataclasses.asdict(config)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()
            if k not in _EVAL_ONLY_FIELDS}


def check_resume(config: configs.Config, train_dir: Path) -> None:
    """Stores the config with the checkpoints; refuses to resume another config's.

    With ``config.fresh`` the folder is emptied first. Otherwise, when ``train_dir``
    holds checkpoints written with other training fields (or without a stored config),
    raises ``ValueError`` naming the differing fields and the way out.
    """
    train_dir = Path(train_dir)
    if config.fresh and train_dir.exists():
        shutil.rmtree(train_dir)
    current = _training_fields(config)
    stored_file = train_dir / CONFIG_FILE
    has_checkpoints = (train_dir / "checkpoints").exists() and any(
        (train_dir / "checkpoints").iterdir())
    if stored_file.exists():
        stored = json.loads(stored_file.read_text())
        differ = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
        if differ:
            details = ", ".join(f"--{k}: checkpoint {stored.get(k)!r}, now {current.get(k)!r}"
                                for k in differ)
            raise ValueError(
                f"{train_dir} holds checkpoints of another configuration ({details}); "
                "pass --fresh to discard them and start over, or use another --workdir"
            )
    elif has_checkpoints:
        raise ValueError(
            f"{train_dir} holds checkpoints written without a stored configuration, so "
            "they cannot be checked against this one; pass --fresh to discard them and "
            "start over, or use another --workdir"
        )
    train_dir.mkdir(parents=True, exist_ok=True)
    stored_file.write_text(json.dumps(current, indent=1, sort_keys=True))


def train_and_evaluate(config: configs.Config, workdir) -> dict:
    """Trains, evaluates and writes every artefact into ``workdir``; returns the results."""
    check_config(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = load_dataset(config.dataset, data_dir=config.data_dir)
    model = train_model(config, data, workdir)
    train_seconds = time.perf_counter() - start
    results, arrays = evaluate(model, data, config, jax.random.key(config.seed + 1))
    results["config"] = dataclasses.asdict(config)
    results["train_seconds"] = train_seconds
    results["plots"] = save_plots(results, arrays, workdir, config)
    results["seconds"] = time.perf_counter() - start
    table = markdown(results, config, results["seconds"])
    report.write_results(workdir, results, table)
    print(table)
    return results


def check_config(config: configs.Config) -> None:
    """Raises ``ValueError`` naming the field (flag) of an invalid configuration."""
    for name in ("width", "mlp_width", "gru_hidden", "num_epochs", "num_samples",
                 "batch_size", "chunk_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(config, name)}")
    for name in ("conv_rate", "head_rate", "mlp_input_rate", "mlp_hidden_rate",
                 "gru_recurrent_rate", "gru_readout_rate"):
        if not 0 <= getattr(config, name) < 1:
            raise ValueError(f"--{name} must be in [0, 1), got {getattr(config, name)}")
    unknown = sorted(set(config.shifts) - set(SHIFTS))
    if unknown:
        raise ValueError(f"unknown --shifts {unknown}; choose from {sorted(SHIFTS)}")
