"""Gal & Ghahramani (2016), Table 1: MC-dropout regression on the UCI data sets.

Their protocol (yaringal/DropoutUncertaintyExps, ``experiment.py`` and ``net/net.py``):
one hidden layer of 50 ReLU units (100 for protein) with dropout on the input and on the
hidden layer, L2 weight decay ``lengthscale**2 * (1 - p) / (2 N tau)`` with
``lengthscale = 1e-2``, Adam with Keras defaults (lr 1e-3), batch 128, 10x the data sets'
epoch counts (400; 200 for protein: the schedule of the paper's Table 1, whose code ran
``n_epochs * 10``), inputs and targets standardised with training statistics. Yacht, whose
277 points make 400 epochs only 1,200 Adam steps, trains 100x (4,000 epochs:
``--epochs_overrides yacht=100``), the ``--epochx 100`` of the repository's 2018
grid-search results (``UCI_Datasets/<name>/results/*_100_xepochs_1_hidden_layers.txt``).
For each of their splits (20; 5 for protein) the dropout rate ``p`` and model precision
``tau`` are chosen on a validation part (the last 20% of the training split) by
MC log-likelihood, the network is retrained on the whole training split, and the test RMSE
of the MC mean and the test log-likelihood

    ll = mean_n [logsumexp_t(-tau/2 (y_n - yhat_tn)^2) - log T - log(2 pi)/2 + log(tau)/2]

use T = 10,000 MC samples, streamed through :func:`jdrop.mc.predictive_regression` in
chunks. The whole grid (4 rates x 3 taus) trains at once: one ``jax.vmap`` over
hyper-parameters inside one ``jax.jit`` ``lax.scan`` over the epoch's steps.
"""

from __future__ import annotations

import functools
import json
import math
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jdrop
from experiments import flags
from experiments.uci_regression import config as configs
from jdrop import mc
from jdrop.data import Standardizer, load_uci, uci_dataset_names
from jdrop.uncertainty import rmse

LENGTHSCALE = 1e-2
BATCH_SIZE = 128

# Gal & Ghahramani 2016, Table 1, MC dropout: (RMSE, SE), (test LL, SE).
PAPER = {
    "bostonHousing": ((2.97, 0.19), (-2.46, 0.06)),
    "concrete": ((5.23, 0.12), (-3.04, 0.02)),
    "energy": ((1.66, 0.04), (-1.99, 0.02)),
    "kin8nm": ((0.10, 0.00), (0.95, 0.01)),
    "naval-propulsion-plant": ((0.01, 0.00), (3.80, 0.01)),
    "power-plant": ((4.02, 0.04), (-2.80, 0.01)),
    "protein-tertiary-structure": ((4.36, 0.01), (-2.89, 0.00)),
    "wine-quality-red": ((0.62, 0.01), (-0.93, 0.01)),
    "yacht": ((1.11, 0.09), (-1.55, 0.03)),
}

# Gal's repository (yaringal/DropoutUncertaintyExps at 6eb4497, readme.md, "Grid Search
# (new)"): the same grid search as here with `--epochx 100` (4,000 epochs; 2,000 for
# protein), the numbers of its UCI_Datasets/<name>/results/log_100_xepochs_1_hidden_layers.txt.
REPO_100X = {
    "bostonHousing": ((2.90, 0.18), (-2.40, 0.04)),
    "concrete": ((4.82, 0.16), (-2.93, 0.02)),
    "energy": ((0.54, 0.06), (-1.21, 0.01)),
    "kin8nm": ((0.08, 0.00), (1.14, 0.01)),
    "naval-propulsion-plant": ((0.00, 0.00), (4.45, 0.00)),
    "power-plant": ((4.01, 0.04), (-2.80, 0.01)),
    "protein-tertiary-structure": ((4.27, 0.02), (-2.87, 0.00)),
    "wine-quality-red": ((0.62, 0.01), (-0.93, 0.01)),
    "yacht": ((0.67, 0.05), (-1.25, 0.01)),
}


def init_params(key, num_features: int, num_hidden: int) -> dict:
    """Glorot-uniform kernels and zero biases (Keras' defaults, as in Gal's code)."""
    k1, k2 = jax.random.split(key)
    glorot = jax.nn.initializers.glorot_uniform()
    return {
        "w1": glorot(k1, (num_features, num_hidden)),
        "b1": jnp.zeros(num_hidden),
        "w2": glorot(k2, (num_hidden, 1)),
        "b2": jnp.zeros(1),
    }


def forward(params: dict, key, x, rate) -> jax.Array:
    """``Dropout -> Dense(relu) -> Dropout -> Dense(1)``; ``key=None`` is deterministic."""
    k1, k2 = (None, None) if key is None else jax.random.split(key)
    deterministic = key is None
    h = jdrop.dropout(k1, x, rate, deterministic=deterministic)
    h = jax.nn.relu(h @ params["w1"] + params["b1"])
    h = jdrop.dropout(k2, h, rate, deterministic=deterministic)
    return (h @ params["w2"] + params["b2"])[:, 0]


def weight_decay(rate, tau, num_train: int, lengthscale: float = LENGTHSCALE):
    """Gal's L2 coefficient ``lengthscale**2 * (1 - p) / (2 N tau)``."""
    return lengthscale**2 * (1 - rate) / (2 * num_train * tau)


@functools.cache
def make_trainer(num_train: int, num_epochs: int, num_hidden: int,
                 lengthscale: float = LENGTHSCALE):
    """A jitted ``train(key, x, y, rates, taus) -> params`` for a grid of (rate, tau).

    Cached: every split of a data set has the same sizes, so it compiles once per size.
    ``lengthscale`` is 1e-2 in Gal's grid-search code (1e-1 in the paper's 2016 code).
    """
    steps = math.ceil(num_train / BATCH_SIZE)
    padded = steps * BATCH_SIZE
    optimizer = optax.adam(1e-3)

    def loss_fn(params, key, xb, yb, weight, rate, decay):
        pred = forward(params, key, xb, rate)
        mse = jnp.sum(weight * (pred - yb) ** 2) / jnp.sum(weight)
        l2 = jnp.sum(params["w1"] ** 2) + jnp.sum(params["w2"] ** 2)
        return mse + decay * l2

    def train_one(key, x, y, rate, tau):
        init_key, data_key, dropout_key = jax.random.split(key, 3)
        params = init_params(init_key, x.shape[1], num_hidden)
        decay = weight_decay(rate, tau, num_train, lengthscale)

        def epoch(carry, epoch_index):
            params, opt_state = carry
            order = jax.random.permutation(jax.random.fold_in(data_key, epoch_index), num_train)
            order = jnp.concatenate([order, jnp.zeros(padded - num_train, order.dtype)])
            weight = (jnp.arange(padded) < num_train).astype(jnp.float32)

            def step(carry, i):
                params, opt_state = carry
                idx = jax.lax.dynamic_slice(order, (i * BATCH_SIZE,), (BATCH_SIZE,))
                w = jax.lax.dynamic_slice(weight, (i * BATCH_SIZE,), (BATCH_SIZE,))
                step_key = jax.random.fold_in(dropout_key, epoch_index * steps + i)
                grads = jax.grad(loss_fn)(params, step_key, x[idx], y[idx], w, rate, decay)
                updates, opt_state = optimizer.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), None

            return jax.lax.scan(step, (params, opt_state), jnp.arange(steps))[0], None

        carry = (params, optimizer.init(params))
        return jax.lax.scan(epoch, carry, jnp.arange(num_epochs))[0][0]

    grid = jax.jit(jax.vmap(train_one, in_axes=(None, None, None, 0, 0)))

    def train(*args):
        # optax's Adam mixes int32 step counts with Python floats: trace it under standard
        # promotion even when the caller (the test suite) runs in strict mode.
        with jax.numpy_dtype_promotion("standard"):
            return grid(*args)

    return train


def mc_evaluate(params, rate, key, x, y_raw, tau, y_mean, y_std, num_samples, chunk_size):
    """Test RMSE of the MC mean and Gal's log-likelihood, in the targets' original units."""
    fn = lambda k, x: forward(params, k, x, rate) * y_std + y_mean
    summary = mc.predictive_regression(
        fn, key, x, num_samples=num_samples, chunk_size=chunk_size, targets=y_raw, tau=tau
    )
    return summary.rmse, summary.log_likelihood


def standard_rmse(params, rate, x, y_raw, y_mean, y_std):
    """RMSE of the deterministic (weight-scaling) prediction."""
    return rmse(forward(params, None, x, rate) * y_std + y_mean, y_raw)


_mc_evaluate = jax.jit(mc_evaluate, static_argnames=("num_samples", "chunk_size"))
_standard_rmse = jax.jit(standard_rmse)


def _standardise(x_train, y_train):
    """Gal's normalisation with training statistics: ``(x scaler, y mean, y std)``."""
    y_scaler = Standardizer.fit(y_train[:, None])
    return Standardizer.fit(x_train), y_scaler.mean[0], y_scaler.std[0]


def run_split(name: str, split: int, config: configs.Config) -> dict:
    """Grid search on the validation part, retrain on the split's training set, test."""
    data = load_uci(name, split, data_dir=config.data_dir)
    epochs = max(1, int(round(data.n_epochs * configs.epochs_multiplier(config, name))))
    x_all = np.asarray(data.X_train, np.float64)
    y_all = np.asarray(data.y_train, np.float64)[:, 0]
    num_fit = int(0.8 * len(x_all))
    rates = np.array([r for r in data.dropout_rates for _ in data.tau_values], np.float32)
    taus = np.array([t for _ in data.dropout_rates for t in data.tau_values], np.float32)
    key = jax.random.fold_in(jax.random.key(config.seed), split)
    train_key, val_key, final_key, test_key = jax.random.split(key, 4)

    # 1. the whole grid on the first 80%, chosen by validation MC log-likelihood
    scaler, y_mean, y_std = _standardise(x_all[:num_fit], y_all[:num_fit])
    x_fit = jnp.asarray(scaler.transform(x_all[:num_fit]))
    y_fit = jnp.asarray(((y_all[:num_fit] - y_mean) / y_std).astype(np.float32))
    grid_params = make_trainer(num_fit, epochs, data.n_hidden)(train_key, x_fit, y_fit, rates, taus)
    x_val = jnp.asarray(scaler.transform(x_all[num_fit:]))
    y_val = jnp.asarray(y_all[num_fit:].astype(np.float32))
    val_ll = []
    for i in range(len(rates)):
        params_i = jax.tree_util.tree_map(lambda p, i=i: p[i], grid_params)
        _, ll = _mc_evaluate(params_i, rates[i], val_key, x_val, y_val, taus[i], y_mean,
                             y_std, config.num_samples, config.chunk_size)
        val_ll.append(float(ll))
    best = int(np.nanargmax(val_ll))

    # 2. retrain on the whole training split with the chosen (rate, tau), then test
    scaler, y_mean, y_std = _standardise(x_all, y_all)
    x_train = jnp.asarray(scaler.transform(x_all))
    y_train = jnp.asarray(((y_all - y_mean) / y_std).astype(np.float32))
    trainer = make_trainer(len(x_all), epochs, data.n_hidden)
    params = trainer(final_key, x_train, y_train, rates[best:best + 1], taus[best:best + 1])
    params = jax.tree_util.tree_map(lambda p: p[0], params)
    x_test = jnp.asarray(scaler.transform(data.X_test))
    y_test = jnp.asarray(np.asarray(data.y_test, np.float32)[:, 0])
    rmse, ll = _mc_evaluate(params, rates[best], test_key, x_test, y_test, taus[best],
                            y_mean, y_std, config.num_samples, config.chunk_size)
    std_rmse = _standard_rmse(params, rates[best], x_test, y_test, y_mean, y_std)
    return {
        "split": split, "rate": float(rates[best]), "tau": float(taus[best]),
        "mc_rmse": float(rmse), "mc_ll": float(ll), "standard_rmse": float(std_rmse),
        "validation_ll": val_ll,
    }


def mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(se)


def summarise(name: str, splits: list[dict]) -> dict:
    out = {"dataset": name, "num_splits": len(splits)}
    for metric in ("mc_rmse", "mc_ll", "standard_rmse"):
        out[metric] = mean_se([s[metric] for s in splits])
    return out


def markdown(rows: list[dict], command: str, seconds: float, num_samples: int,
             epochs: dict[str, int] | None = None) -> str:
    """The table; ``epochs`` (data set -> epochs trained) adds an "epochs" column."""
    epochs = epochs or {}
    fmt = lambda m: f"{m[0]:.2f} ± {m[1]:.2f}"
    lines = [
        "# UCI regression: MC dropout (Gal & Ghahramani 2016, Table 1)",
        "",
        f"Command: `{command}`  ",
        f"Wall time: {seconds:.0f} s (summed over data sets) on {platform.machine()} CPU "
        f"({jax.device_count()} JAX device(s)), jax {jax.__version__}; T = {num_samples} "
        "MC samples.",
        "",
        "| data set | splits | epochs | MC RMSE (ours) | MC RMSE (paper) | MC RMSE (repo, 100x) "
        "| test LL (ours) | test LL (paper) | test LL (repo, 100x) | standard RMSE (ours) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        paper_rmse, paper_ll = PAPER[row["dataset"]]
        repo_rmse, repo_ll = REPO_100X[row["dataset"]]
        lines.append(
            f"| {row['dataset']} | {row['num_splits']} | {epochs.get(row['dataset'], '')} | "
            f"{fmt(row['mc_rmse'])} | {fmt(paper_rmse)} | {fmt(repo_rmse)} | "
            f"{fmt(row['mc_ll'])} | {fmt(paper_ll)} | {fmt(repo_ll)} | "
            f"{fmt(row['standard_rmse'])} |"
        )
    lines += ["", "Values are mean ± standard error over the splits. Paper: Gal & Ghahramani "
              "(2016), Table 1 (400 epochs; 200 for protein). Repo, 100x: the grid-search "
              "results of Gal's repository (4,000 epochs; 2,000 for protein)."]
    return "\n".join(lines) + "\n"


def check_config(config: configs.Config) -> None:
    """Raises ``ValueError`` naming the field (flag) of an invalid configuration."""
    for name in ("num_samples", "chunk_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(config, name)}")
    if config.splits is not None and config.splits < 1:
        raise ValueError(f"--splits must be >= 1, got {config.splits}")
    if config.first_split < 0:
        raise ValueError(f"--first_split must be >= 0, got {config.first_split}")
    if config.epochs_multiplier <= 0:
        raise ValueError(f"--epochs_multiplier must be > 0, got {config.epochs_multiplier}")
    configs.epochs_multiplier(config, "")  # raises for a malformed --epochs_overrides entry
    named = {entry.partition("=")[0] for entry in config.epochs_overrides}
    unknown_overrides = sorted(named - set(uci_dataset_names()))
    if unknown_overrides:
        raise ValueError(f"unknown data sets in --epochs_overrides {unknown_overrides}; "
                         f"choose from {uci_dataset_names()}")
    unknown = sorted(set(config.datasets or ()) - set(uci_dataset_names()))
    if unknown:
        raise ValueError(f"unknown --datasets {unknown}; choose from {uci_dataset_names()}")


def run_dataset(name: str, config: configs.Config) -> dict:
    """Every split of one data set; the result is saved before the next data set starts."""
    n_splits = load_uci(name, 0, data_dir=config.data_dir).n_splits
    stop = n_splits if config.splits is None else min(config.first_split + config.splits,
                                                      n_splits)
    start = time.perf_counter()
    splits = []
    for split in range(config.first_split, stop):
        result = run_split(name, split, config)
        splits.append(result)
        print(f"{name} split {split}: MC RMSE {result['mc_rmse']:.3f}, "
              f"LL {result['mc_ll']:.3f} (p={result['rate']:.3g}, tau={result['tau']:.3g})",
              flush=True)
    return {"summary": summarise(name, splits), "splits": splits,
            "seconds": time.perf_counter() - start}


def train_and_evaluate(config: configs.Config, workdir) -> list[dict]:
    """Runs the data sets; each one's results land in ``<workdir>/uci_runs/<name>.json``
    as soon as it finishes, and a data set whose file exists (with the same settings) is
    not run again: a stopped run resumes, and several processes can share the work. The
    table of every data set run so far goes to ``<workdir>/uci_regression.{md,json}``."""
    check_config(config)
    names = config.datasets or list(uci_dataset_names())
    out = Path(workdir)
    runs = out / "uci_runs"
    runs.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(config, k) for k in
                ("splits", "first_split", "num_samples", "chunk_size", "epochs_multiplier",
                 "seed")}
    # a data set's own settings: its epochs multiplier (``epochs_overrides`` applied)
    settings_of = lambda name: settings | {
        "epochs_multiplier": configs.epochs_multiplier(config, name)}
    for name in [] if config.table_only else names:
        path = runs / f"{name}.json"
        if path.exists() and json.loads(path.read_text()).get("settings") == settings_of(name):
            print(f"{name}: already done ({path})", flush=True)
            continue
        result = run_dataset(name, config) | {"settings": settings_of(name)}
        path.write_text(json.dumps(result, indent=1))
    done = {n: json.loads((runs / f"{n}.json").read_text()) for n in uci_dataset_names()
            if (runs / f"{n}.json").exists()}
    # the table takes every data set run with the same protocol, whatever its split count
    same = lambda s: {k: v for k, v in s.items() if k not in ("splits", "first_split")}
    done = {n: r for n, r in done.items()
            if same(r.get("settings", {})) == same(settings_of(n))}
    rows = [r["summary"] for r in done.values()]
    epochs = {n: max(1, int(round(load_uci(n, 0, data_dir=config.data_dir).n_epochs
                                  * r["settings"]["epochs_multiplier"])))
              for n, r in done.items()}
    seconds = sum(r["seconds"] for r in done.values())
    command = flags.command("experiments.uci_regression", config)
    table = markdown(rows, command, seconds, config.num_samples, epochs)
    print(table)
    (out / "uci_regression.md").write_text(table)
    (out / "uci_regression.json").write_text(json.dumps(
        {"command": command, "seconds": seconds,
         "settings": settings | {"epochs_overrides": list(config.epochs_overrides)},
         "epochs": epochs, "summary": rows,
         "splits": {n: r["splits"] for n, r in done.items()}}, indent=1))
    return rows
