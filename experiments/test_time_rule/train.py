"""MC averaging vs the weight-scaling rule (Srivastava et al. 2014, Figure 11).

Trains the best dropout MLP of Table 9 (dropout + max-norm) and a LeNet-style dropout CNN
(``experiments._images``), then measures on the test set the error and NLL of the average
of T stochastic passes (MC dropout, T = 1..``max(sample_counts)``) against one
deterministic pass (weight scaling: inverted dropout needs no rescaling at test). One
``lax.scan`` over the T samples keeps a running sum of the class probabilities, so every T
of the curve comes from the same samples. Writes ``test_time_rule.json``, ``.md``, ``.png``
and per-model files under ``arms/`` (a finished model is not retrained) into the workdir.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _images as im
from experiments.test_time_rule import config as configs


def _network(name: str, c: configs.Config):
    """``(apply_fn, init_fn, hypers, epochs)`` of the ``mlp`` or ``cnn`` dropout network."""
    if name == "mlp":
        return (im.mlp_apply, functools.partial(im.init_mlp, sizes=(784, *c.mlp_hidden, 10)),
                {"in_rate": c.mlp_in_rate, "hid_rate": c.mlp_hid_rate,
                 "max_norm": c.max_norm, "lr": c.learning_rate}, c.mlp_epochs)
    if name == "cnn":
        hp = {"conv_rate": c.cnn_conv_rate, "hid_rate": c.cnn_hid_rate, "lr": c.learning_rate}
        return (functools.partial(im.cnn_apply, ops=im.conv_ops(hp)),
                functools.partial(im.init_cnn, channels=c.cnn_channels, hidden=c.cnn_hidden),
                hp, c.cnn_epochs)
    raise ValueError(f"models must be 'mlp' or 'cnn', got {name!r}")


def check_config(c: configs.Config) -> None:
    for name in c.models:
        _network(name, c)
    if not c.sample_counts or min(c.sample_counts) < 1:
        raise ValueError(f"sample_counts must be >= 1, got {c.sample_counts}")


def mc_curve(apply_fn, params, hp, x, y, key, num_samples: int, chunk: int) -> dict:
    """Per T = 1..num_samples: error and NLL of the mean of T MC-dropout predictive
    distributions, and the deterministic (weight-scaling) error and NLL."""
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}

    @jax.jit
    def run(xc, yc, k):
        def sample(total, t):
            probs = jax.nn.softmax(apply_fn(params, xc, jax.random.fold_in(k, t), hp, True))
            total = total + probs
            mean = total / (t + 1).astype(jnp.float32)
            wrong = jnp.sum(jnp.argmax(mean, -1) != yc)
            nll = -jnp.sum(jnp.log(jnp.take_along_axis(mean, yc[:, None], -1) + 1e-12))
            return total, (wrong, nll)

        zeros = jnp.zeros((xc.shape[0], 10), jnp.float32)
        _, (wrong, nll) = jax.lax.scan(sample, zeros, jnp.arange(num_samples))
        logp = jax.nn.log_softmax(apply_fn(params, xc, None, hp, False))
        det_wrong = jnp.sum(jnp.argmax(logp, -1) != yc)
        det_nll = -jnp.sum(jnp.take_along_axis(logp, yc[:, None], -1))
        return wrong, nll, det_wrong, det_nll

    sums = [0.0, 0.0, 0.0, 0.0]
    for start in range(0, x.shape[0], chunk):
        out = run(x[start:start + chunk], y[start:start + chunk], key)
        sums = [s + np.asarray(o, np.float64) for s, o in zip(sums, out, strict=True)]
    n = x.shape[0]
    return {"mc_error": sums[0] / n, "mc_nll": sums[1] / n,
            "ws_error": float(sums[2]) / n, "ws_nll": float(sums[3]) / n}


def crossing(curve: np.ndarray, line: float) -> int | None:
    """The smallest T from which the MC curve stays at or below the weight-scaling line."""
    below = curve <= line
    for t in range(len(curve)):
        if below[t:].all():
            return t + 1
    return None


def evaluate_model(name, c, data, workdir) -> dict:
    """Trains model ``name`` (or loads it) and writes/reads ``arms/<name>_mc.json``."""
    path = Path(workdir) / "arms" / f"{name}_mc.json"
    if path.exists():
        return json.loads(path.read_text())
    apply_fn, init_fn, hp, epochs = _network(name, c)
    trainer = im.trainer_for(apply_fn, data, c, num_epochs=epochs,
                             models_axis="vmap" if name == "mlp" else im.conv_models_axis())
    hypers, seeds = im.grid([hp], [c.seed])
    arm = im.run_arm(trainer, init_fn, name, hypers, seeds, workdir, progress=c.progress,
                     save_params=True)
    params = jax.tree.map(lambda a: a[0], im.load_params(workdir, name))
    full_hp = {k: v[0] for k, v in im.full_hypers(hypers).items()}
    t0 = time.perf_counter()
    curve = mc_curve(apply_fn, params, full_hp, data.x_test, data.y_test,
                     jax.random.key(c.seed + 1000), max(c.sample_counts), c.mc_chunk)
    counts = [t for t in c.sample_counts if t <= len(curve["mc_error"])]
    mc = {"T": counts,
          "test_error": [float(curve["mc_error"][t - 1]) for t in counts],
          "test_nll": [float(curve["mc_nll"][t - 1]) for t in counts]}
    mc["test_accuracy"] = [1.0 - e for e in mc["test_error"]]
    record = {
        "model": name, "seed": c.seed, "hypers": hp, "train_seconds": arm["seconds"],
        "mc_seconds": round(time.perf_counter() - t0, 1),
        "num_test": int(data.x_test.shape[0]),
        "weight_scaling": {"test_error": curve["ws_error"], "test_nll": curve["ws_nll"],
                           "test_accuracy": 1.0 - curve["ws_error"]},
        "mc": mc,
        "mc_error_all_T": [float(v) for v in curve["mc_error"]],
        "mc_nll_all_T": [float(v) for v in curve["mc_nll"]],
        "crossing_error_T": crossing(curve["mc_error"], curve["ws_error"]),
        "crossing_nll_T": crossing(curve["mc_nll"], curve["ws_nll"]),
    }
    path.write_text(json.dumps(record, indent=1))
    return record


def train_and_evaluate(c: configs.Config, workdir) -> dict:
    check_config(c)
    start = time.perf_counter()
    data = im.load_images(num_val=c.num_val, max_train=c.num_train, max_test=c.max_test,
                          data_dir=c.data_dir)
    models = {name: evaluate_model(name, c, data, workdir) for name in c.models}
    result = {"experiment": "test_time_rule", "config": c.__dict__,
              "models": {k: {kk: vv for kk, vv in v.items() if not kk.endswith("all_T")}
                         for k, v in models.items()},
              "wall_seconds": round(time.perf_counter() - start, 1)}
    im.write_outputs(workdir, "test_time_rule", result, markdown(result, c))
    plot(models, Path(workdir) / "test_time_rule.png")
    return result


def markdown(result: dict, c: configs.Config) -> str:
    lines = [f"## Test-time rule: MC averaging vs weight scaling (Fashion-MNIST, "
             f"{next(iter(result['models'].values()))['num_test']} test images)", ""]
    for name, m in result["models"].items():
        ws = m["weight_scaling"]
        rows = [["weight scaling", im.pct(ws["test_error"]), f"{ws['test_nll']:.4f}"]]
        rows += [[f"MC, T = {t}", im.pct(e), f"{nll:.4f}"] for t, e, nll in
                 zip(m["mc"]["T"], m["mc"]["test_error"], m["mc"]["test_nll"], strict=True)]
        lines += [f"**{name.upper()}** ({m['hypers']}):", "",
                  im.markdown_table(["inference", "test error %", "test NLL"], rows), "",
                  f"MC error at or below weight scaling from T = {m['crossing_error_T']} "
                  f"on; MC NLL from T = {m['crossing_nll_T']} on (None: never for every "
                  f"larger T). Training {m['train_seconds'] / 60:.1f} min, MC "
                  f"{m['mc_seconds'] / 60:.1f} min.", ""]
    lines.append(im.run_note("test_time_rule", c, result["wall_seconds"]))
    return "\n".join(lines)


def plot(models: dict, path: Path) -> None:
    """Test error and NLL vs T (log axis), the weight-scaling value as a dashed line."""
    plt = im.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (name, m) in enumerate(models.items()):
        color = f"C{i}"
        t = np.arange(1, len(m["mc_error_all_T"]) + 1)
        for ax, curve, line, label in (
                (axes[0], np.array(m["mc_error_all_T"]) * 100,
                 m["weight_scaling"]["test_error"] * 100, "test error %"),
                (axes[1], np.array(m["mc_nll_all_T"]), m["weight_scaling"]["test_nll"],
                 "test NLL")):
            ax.plot(t, curve, color=color, label=f"{name}: MC average of T")
            ax.axhline(line, color=color, linestyle="--", label=f"{name}: weight scaling")
            ax.set(xscale="log", xlabel="T (MC samples)", ylabel=label)
    axes[0].legend(fontsize=8)
    fig.suptitle("Fashion-MNIST: MC averaging vs weight scaling")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
