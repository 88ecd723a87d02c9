"""Speech on FSDD: isolated digits (official split, leave-one-speaker-out), connected digits
with CTC, MC-dropout uncertainty. See the package docstring and ``config.py``.

Speed: log-mels are computed once per run (jitted, batched); the folds (or seeds) of a
BiGRU arm train as one ``jax.vmap``-ed program whose steps run in a ``lax.scan`` inside
``jit``, called ``num_evals`` times (one learning-curve point and progress line per call);
on a CPU a CNN arm calls one jitted step per fold and step instead (:func:`_loop_for`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jdrop
from experiments.speech import config as config_lib
from jdrop import audio
from jdrop.data import leave_one_speaker_out, load_wav_folder
from jdrop.models import AcousticCNN, AcousticRNN
from jdrop.uncertainty import auroc, mutual_information

RESULTS = Path(__file__).parent / "results"
DIGITS = 10
SAMPLE_RATE = 8000  # FSDD: mono 8 kHz (checked when the clips load)
BLANK = 0  # CTC blank; digit d is class d + 1


def check_config(cfg) -> None:
    """Raises ``ValueError`` naming the flag of an invalid setting."""
    for part in cfg.parts:
        if part not in config_lib.PARTS:
            raise ValueError(f"--parts: unknown part {part!r}; choose from {config_lib.PARTS}")
    for arm in cfg.arms:
        if arm not in config_lib.ARMS:
            raise ValueError(f"--arms: unknown arm {arm!r}; choose from {config_lib.ARMS}")
    for arm in cfg.ctc_arms:
        if arm not in config_lib.CTC_ARMS:
            raise ValueError(f"--ctc_arms: unknown arm {arm!r}; choose from {config_lib.CTC_ARMS}")
    if cfg.mc_arm in ("none", "rnn_none", "vtlp") or cfg.mc_arm not in config_lib.ARMS:
        raise ValueError(f"--mc_arm must be a dropout arm of {config_lib.ARMS}, got {cfg.mc_arm!r}")
    if not 1 <= cfg.ctc_min_digits <= cfg.ctc_max_digits:
        raise ValueError("--ctc_min_digits and --ctc_max_digits: need 1 <= min <= max")
    if not 0.0 <= cfg.vtlp_max_warp < 1.0:
        raise ValueError(f"--vtlp_max_warp must be in [0, 1), got {cfg.vtlp_max_warp}")
    if not 6 <= cfg.clips_per_digit <= 50:
        raise ValueError(f"--clips_per_digit must be in [6, 50], got {cfg.clips_per_digit}")
    for name in ("epochs", "batch_size", "num_evals", "ctc_epochs", "ctc_batch_size",
                 "ctc_seeds", "mc_samples", "ctc_train_utterances", "ctc_test_utterances"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(cfg, name)}")


def _log(cfg, message: str) -> None:
    if cfg.progress:
        print(message, flush=True)


# ----------------------------------------------------------------------------- features


def log_mels(cfg, waveforms: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Per-utterance normalised log-mels ``(N, T, n_mels)`` (T a multiple of 4 for the CNN)."""
    out = []
    for start in range(0, len(waveforms), chunk):
        db = audio.log_mel_spectrogram(
            jnp.asarray(waveforms[start : start + chunk]), sample_rate=SAMPLE_RATE, n_fft=cfg.n_fft,
            hop_length=cfg.hop_length, n_mels=cfg.n_mels,
        )
        # per-utterance mean/variance normalisation (CMVN): removes channel/speaker level
        db = db - db.mean(axis=1, keepdims=True)
        db = db / (db.std(axis=(1, 2), keepdims=True) + 1e-5)
        out.append(np.asarray(db))
    feats = np.concatenate(out)
    return feats[:, : feats.shape[1] // 4 * 4]


# ----------------------------------------------------------------------------- training


def _make_model(cfg, arm: str, n_frames: int, key) -> nnx.Module:
    rngs = nnx.Rngs(key)
    augment = dict(num_time_masks=cfg.time_masks, max_time_width=cfg.max_time_width,
                   num_freq_masks=cfg.freq_masks, max_freq_width=cfg.max_freq_width)
    if arm in ("rnn_none", "recurrent"):
        rates = (cfg.rnn_input_rate, cfg.rnn_recurrent_rate, cfg.rnn_output_rate)
        rates = rates if arm == "recurrent" else (0.0, 0.0, 0.0)
        return AcousticRNN(cfg.n_mels, DIGITS, rngs=rngs, hidden_size=cfg.rnn_hidden,
                           subsample=cfg.rnn_subsample, input_dropout=rates[0],
                           recurrent_dropout=rates[1], output_dropout=rates[2])
    kwargs = dict(channels=cfg.cnn_channels, hidden=cfg.cnn_hidden)
    if arm == "standard":
        kwargs |= dict(dropout=cfg.dense_rate, conv_dropout=cfg.conv_standard_rate,
                       conv_dropout_kind="standard")
    elif arm == "spatial":
        kwargs |= dict(dropout=cfg.dense_rate, conv_dropout=cfg.conv_spatial_rate)
    elif arm == "specaugment":
        kwargs |= dict(spec_augment=augment)
    elif arm == "specaugment_dropout":
        kwargs |= dict(dropout=cfg.dense_rate, conv_dropout=cfg.conv_spatial_rate,
                       spec_augment=augment)
    elif arm in ("vtlp", "vtlp_dropout"):
        kwargs |= dict(vtlp=dict(sample_rate=SAMPLE_RATE, max_warp=cfg.vtlp_max_warp))
        if arm == "vtlp_dropout":
            kwargs |= dict(dropout=cfg.dense_rate, conv_dropout=cfg.conv_standard_rate,
                           conv_dropout_kind="standard")
    return AcousticCNN(n_frames, cfg.n_mels, DIGITS, rngs=rngs, **kwargs)


def _stacked_init(make, keys):
    """``(graphdef, params stacked over keys)``: one initialisation per key, stacked.

    A Python loop, not ``vmap``: the initialisers then compile once at the unbatched
    shapes (same random bits per key); a vmapped init took 3-5x longer to compile.
    """
    graphdef, first = nnx.split(make(keys[0]))
    rest = [nnx.split(make(k))[1] for k in keys[1:]]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), first, *rest)
    return graphdef, params


def _optimizer(lr: float, total_steps: int, clip: float | None = None):
    schedule = optax.cosine_decay_schedule(lr, max(total_steps, 1))
    adam = optax.adam(schedule)
    return adam if clip is None else optax.chain(optax.clip_by_global_norm(clip), adam)


# ----------------------------------------------------------------------------- isolated


def _classifier_loss(feats):
    def loss_fn(model, key, rows):
        logits = model(feats[rows[:, 0]], key=key)
        return optax.softmax_cross_entropy_with_integer_labels(logits, rows[:, 1]).mean()

    return loss_fn


def _confusion(labels, preds, k=DIGITS) -> np.ndarray:
    out = np.zeros((k, k), np.int64)
    np.add.at(out, (np.asarray(labels), np.asarray(preds)), 1)
    return out


def _run_isolated_arm(cfg, arm, feats, clips, splits, log):
    """Trains ``arm`` on every split in ``splits`` (``name -> (train, tests)``)."""
    labels = clips["labels"]
    dfeats = jnp.asarray(feats)
    dlabels = jnp.asarray(labels)
    n_frames = feats.shape[1]
    out = {}
    for split_name, (train_rows, test_sets) in splits.items():
        folds = train_rows.shape[0]
        pairs = np.stack([train_rows, labels[train_rows]], axis=-1)  # (F, N, 2): row, label
        test_rows = {name: jnp.asarray(rows) for name, rows in test_sets.items()}
        seed_keys = jax.random.split(jax.random.key(cfg.seed), folds)

        def make(k):
            return _make_model(cfg, arm, n_frames, k)

        loss_fn = _classifier_loss(dfeats)

        def evaluate_fold(model, fold, test_rows=test_rows):
            res = {}
            for name, rows in test_rows.items():
                r = rows[fold]
                pred = model(dfeats[r], deterministic=True).argmax(-1)
                res[f"{name}_accuracy"] = (pred == dlabels[r]).mean()
            return res

        t0 = time.perf_counter()
        recurrent = arm in ("rnn_none", "recurrent")
        graphdef, params, curve = _train(
            make, loss_fn, evaluate_fold, pairs, seed_keys, jnp.arange(folds),
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.learning_rate,
            num_evals=cfg.num_evals, log=log, label=f"{arm}/{split_name}",
            fold_batch=cfg.rnn_fold_batch if recurrent else cfg.cnn_fold_batch,
            loop=_loop_for(recurrent))
        seconds = time.perf_counter() - t0
        # final predictions per fold (for the confusion matrix and the JSON)
        preds = {}
        for name, rows in test_sets.items():
            predict = lambda prm, r, g=graphdef: nnx.merge(g, prm)(
                dfeats[r], deterministic=True).argmax(-1)
            preds[name] = np.asarray(jax.jit(jax.vmap(predict))(params, jnp.asarray(rows)))
        out[split_name] = {"params": params, "graphdef": graphdef, "curve": curve,
                           "preds": preds, "seconds": seconds}
    return out


def _loop_for(recurrent: bool) -> str:
    """``_train``'s ``loop``: ``"host"`` for a CNN on a CPU, else ``"program"``.

    On XLA:CPU (jax 0.10) a convolution's gradient inside ``lax.scan`` is slow, and a
    vmapped kernel becomes a grouped convolution: per model and Adam step on the 2-core CPU
    (another job running), the default CNN took 34 ms in the program and 12 ms as the host
    loop (the 16-32-128 CNN: 159 ms and 20 ms). The BiGRUs are faster in the program
    (isolated 7.0 ms against 9.6 ms, CTC 13-16 ms against 15-20 ms), so they stay there.
    """
    return "host" if jax.default_backend() == "cpu" and not recurrent else "program"


def _train(make, loss_fn, evaluate_fold, rows, keys, fold_ids, *, epochs, batch_size, lr,
           num_evals, clip=None, log=print, label="", fold_batch=None, loop="program"):
    """Trains one model per fold; ``evaluate_fold(model, fold_id)``.

    ``loop`` says how: ``"program"`` runs the folds (``fold_batch`` at a time) as one
    ``jax.vmap``-ed program whose steps are a ``lax.scan``; ``"host"`` calls one jitted
    Adam step of one model from Python, for every fold and step (see :func:`_loop_for`).
    Both take the same steps with the same keys and batches: the same models up to float
    rounding, the same curve.
    """
    if loop not in ("program", "host"):
        raise ValueError(f"loop must be 'program' or 'host', got {loop!r}")
    folds, n = rows.shape[:2]
    steps_per_epoch = max(n // batch_size, 1)
    batch = min(batch_size, n)
    total = epochs * steps_per_epoch
    init_keys, run_keys = jax.vmap(jax.random.split)(keys).swapaxes(0, 1)
    graphdef, params = _stacked_init(make, init_keys)
    tx = _optimizer(lr, total, clip)
    opt_state = jax.vmap(tx.init)(params)
    rows = jnp.asarray(rows)

    def step(params, opt_state, key, rows_f, s):
        """Step ``s`` of one model: ``(params, opt_state, loss)``."""
        perm = jax.random.permutation(jax.random.fold_in(key, s // steps_per_epoch), n)
        idx = jax.lax.dynamic_slice(perm, ((s % steps_per_epoch) * batch,), (batch,))
        step_key = jax.random.fold_in(jax.random.fold_in(key, 7919), s)
        loss, grads = jax.value_and_grad(
            lambda p: loss_fn(nnx.merge(graphdef, p), step_key, rows_f[idx]))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def make_chunk(length):
        def one(p, o, k, r, start):
            def body(carry, s):
                p, o, loss = step(*carry, k, r, s)
                return (p, o), loss

            (p, o), losses = jax.lax.scan(
                body, (p, o), start + jnp.arange(length, dtype=jnp.int32))
            return p, o, losses.mean()

        return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)))

    take = lambda tree, sl: jax.tree.map(lambda x: x[sl], tree)
    stack = lambda outs: jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    if loop == "host":
        one_step = jax.jit(step)
        one_eval = jax.jit(lambda p, f: evaluate_fold(nnx.merge(graphdef, p), f))

        def train_chunk(params, opt_state, start, stop):
            outs = []
            for f in range(folds):
                p, o, k, r, losses = *take((params, opt_state), f), run_keys[f], rows[f], []
                for s in range(start, stop):
                    p, o, loss = one_step(p, o, k, r, jnp.int32(s))
                    losses.append(loss)
                outs.append((p, o, jnp.stack(losses).mean()))
            return stack(outs)

        def eval_fn(params, fold_ids):
            return stack([one_eval(take(params, f), fold_ids[f]) for f in range(folds)])
    else:
        chunks = {}
        group = max(1, min(fold_batch or folds, folds))
        groups = [slice(g, min(g + group, folds)) for g in range(0, folds, group)]

        def train_chunk(params, opt_state, start, stop):
            if stop - start not in chunks:
                chunks[stop - start] = make_chunk(stop - start)
            outs = [chunks[stop - start](take(params, sl), take(opt_state, sl), run_keys[sl],
                                         rows[sl], jnp.int32(start)) for sl in groups]
            return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outs)

        eval_fn = jax.jit(jax.vmap(lambda p, f: evaluate_fold(nnx.merge(graphdef, p), f)))
    bounds = np.linspace(0, total, num_evals + 1).round().astype(int)
    curve, t0 = [], time.perf_counter()
    for i in range(num_evals):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        if stop == start:
            continue
        params, opt_state, loss = train_chunk(params, opt_state, start, stop)
        metrics = jax.device_get(eval_fn(params, fold_ids))
        point = {"epoch": round(float(stop) / steps_per_epoch, 2),
                 "loss": np.asarray(loss).tolist()}
        point |= {k: np.asarray(v).tolist() for k, v in metrics.items()}
        curve.append(point)
        shown = " ".join(f"{k}={np.mean(v):.4f}" for k, v in point.items() if k != "epoch")
        log(f"  {label} epoch {point['epoch']:g}/{epochs}: {shown} "
            f"({time.perf_counter() - t0:.0f} s)")
    return graphdef, params, curve


def isolated_splits(cfg, clips):
    """``{"official": (train (1, N), {"test": (1, M)}), "loso": (train (6, N'), {...})}``."""
    indices, speakers = clips["indices"], clips["speakers"]
    splits = {}
    if cfg.official:
        train = np.flatnonzero(indices >= 5)
        test = np.flatnonzero(indices < 5)
        splits["official"] = (train[None], {"test": test[None]})
    if cfg.loso:
        trains, unseen, seen = [], [], []
        for _, tr, te in leave_one_speaker_out(speakers):
            trains.append(tr[indices[tr] >= 5])  # seen speakers' repetitions 0-4 held out
            seen.append(tr[indices[tr] < 5])
            unseen.append(te)
        splits["loso"] = (np.stack(trains), {"unseen": np.stack(unseen), "seen": np.stack(seen)})
    return splits


def _arm_summary(arm, result, clips, test_sets_all) -> dict:
    labels = clips["labels"]
    out = {"arm": arm}
    if "official" in result:
        r = result["official"]
        pred = r["preds"]["test"][0]
        truth = labels[test_sets_all["official"][1]["test"][0]]
        out["official_accuracy"] = float((pred == truth).mean())
        out["official_curve"] = r["curve"]
        out["official_seconds"] = round(r["seconds"], 1)
        out["official_confusion"] = _confusion(truth, pred).tolist()
    if "loso" in result:
        r = result["loso"]
        rows = test_sets_all["loso"][1]["unseen"]
        accs = [(r["preds"]["unseen"][f] == labels[rows[f]]).mean() for f in range(len(rows))]
        out["loso_fold_accuracy"] = [float(a) for a in accs]
        out["loso_accuracy"] = float(np.mean(accs))
        out["loso_std"] = float(np.std(accs))
        seen_rows = test_sets_all["loso"][1]["seen"]
        out["loso_seen_accuracy"] = float(np.mean(
            [(r["preds"]["seen"][f] == labels[seen_rows[f]]).mean() for f in range(len(rows))]))
        out["loso_curve"] = r["curve"]
        out["loso_seconds"] = round(r["seconds"], 1)
        truth = np.concatenate([labels[rows[f]] for f in range(len(rows))])
        out["loso_confusion"] = _confusion(truth, r["preds"]["unseen"].reshape(-1)).tolist()
    return out


def _save_params(path: Path, params) -> None:
    leaves = jax.tree.leaves(params)
    np.savez(path, *[np.asarray(x) for x in leaves])


def _load_params(path: Path, like):
    data = np.load(path)
    leaves = [jnp.asarray(data[f"arr_{i}"]) for i in range(len(data.files))]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def run_isolated(cfg, workdir: Path, clips, feats, log) -> dict:
    folder = workdir / "isolated"
    folder.mkdir(parents=True, exist_ok=True)
    splits = isolated_splits(cfg, clips)
    results = {}
    for arm in cfg.arms:
        path = folder / f"{arm}.json"
        if path.exists():
            results[arm] = json.loads(path.read_text())
            log(f"isolated/{arm}: done already ({path})")
            continue
        log(f"isolated/{arm}: training " + ", ".join(
            f"{name} ({tr.shape[0]} x {tr.shape[1]} examples)" for name, (tr, _) in splits.items()))
        t0 = time.perf_counter()
        result = _run_isolated_arm(cfg, arm, feats, clips, splits, log)
        summary = _arm_summary(arm, result, clips, splits)
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        if "loso" in result:
            _save_params(folder / f"{arm}_loso_params.npz", result["loso"]["params"])
        path.write_text(json.dumps(summary, indent=1))
        results[arm] = summary
        log(f"isolated/{arm}: official {summary.get('official_accuracy', float('nan')):.4f}, "
            f"LOSO {summary.get('loso_accuracy', float('nan')):.4f} "
            f"+- {summary.get('loso_std', float('nan')):.4f} ({summary['seconds']:.0f} s)")
    return results


# ----------------------------------------------------------------------------- connected


def synthesize(cfg, clips, speakers: list[int], count: int, seed: int):
    """Utterances of ``ctc_min_digits``-``ctc_max_digits`` clips of ``speakers``.

    Each digit is preceded by a pause of ``U(ctc_min_pause, ctc_max_pause)`` seconds; the
    whole window gets white noise of standard deviation ``U(ctc_min_noise,
    ctc_max_noise)``. Draws longer than the window are redrawn.

    Returns:
      ``(waveforms (count, S) float32, labels (count, max_digits) int32 (digit + 1, 0 =
      padding), lengths (count,) int32)``.
    """
    rng = np.random.default_rng(seed)
    rate = clips.sample_rate
    window = int(cfg.ctc_seconds * rate)
    pool = np.flatnonzero(np.isin(clips["speakers"], speakers))
    wav, lengths, labels = clips["waveforms"], clips["lengths"], clips["labels"]
    out = np.zeros((count, window), np.float32)
    out_labels = np.zeros((count, cfg.ctc_max_digits), np.int32)
    out_lengths = np.zeros(count, np.int32)
    for i in range(count):
        while True:
            n = int(rng.integers(cfg.ctc_min_digits, cfg.ctc_max_digits + 1))
            chosen = rng.choice(pool, n)
            pauses = rng.uniform(cfg.ctc_min_pause, cfg.ctc_max_pause, n) * rate
            total = int(pauses.sum()) + int(lengths[chosen].sum())
            if total <= window:
                break
        pos = 0
        for row, pause in zip(chosen, pauses, strict=True):
            pos += int(pause)
            out[i, pos : pos + lengths[row]] = wav[row, : lengths[row]]
            pos += int(lengths[row])
        out[i] += rng.normal(0, rng.uniform(cfg.ctc_min_noise, cfg.ctc_max_noise), window)
        out_labels[i, :n] = labels[chosen] + 1
        out_lengths[i] = n
    return out, out_labels, out_lengths


def greedy_decode(logits) -> list[list[int]]:
    """Greedy CTC decoding: best class per frame, repeats merged, blanks removed (digits)."""
    best = np.asarray(logits).argmax(-1)
    out = []
    for row in best:
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        out.append([int(c) - 1 for c in row[keep] if c != BLANK])
    return out


def edit_distance(a, b) -> int:
    """Levenshtein distance between two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def run_connected(cfg, workdir: Path, clips, log) -> dict:
    folder = workdir / "connected"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [a for a in cfg.ctc_arms if not (folder / f"{a}.json").exists()]
    results = {a: json.loads((folder / f"{a}.json").read_text())
               for a in cfg.ctc_arms if a not in todo}
    for a in results:
        log(f"connected/{a}: done already")
    if not todo:
        return results
    names = list(clips.speaker_names)
    test_ids = [names.index(s) for s in cfg.ctc_test_speakers]
    train_ids = [i for i in range(len(names)) if i not in test_ids]
    t0 = time.perf_counter()
    train_w, train_y, train_n = synthesize(cfg, clips, train_ids, cfg.ctc_train_utterances,
                                           cfg.seed)
    test_w, test_y, test_n = synthesize(cfg, clips, test_ids, cfg.ctc_test_utterances,
                                        cfg.seed + 1)
    train_x = jnp.asarray(log_mels(cfg, train_w, chunk=100))
    test_x = jnp.asarray(log_mels(cfg, test_w, chunk=100))
    log(f"connected: {len(train_w)} train / {len(test_w)} test utterances of "
        f"{train_x.shape[1]} frames ({time.perf_counter() - t0:.0f} s)")
    train_labels = jnp.asarray(train_y)
    label_pad = (train_labels == 0).astype(jnp.float32)
    steps = train_x.shape[1] // cfg.ctc_subsample

    for arm in todo:
        rates = ((cfg.ctc_input_rate, cfg.ctc_recurrent_rate, cfg.ctc_output_rate)
                 if arm == "ctc_dropout" else (0.0, 0.0, 0.0))

        def make(k, rates=rates):
            return AcousticRNN(cfg.n_mels, DIGITS + 1, rngs=nnx.Rngs(k),
                               hidden_size=cfg.ctc_hidden, readout="sequence",
                               subsample=cfg.ctc_subsample, input_dropout=rates[0],
                               recurrent_dropout=rates[1], output_dropout=rates[2])

        def loss_fn(model, key, rows):
            logits = model(train_x[rows], key=key)
            pad = jnp.zeros(logits.shape[:2], jnp.float32)
            return optax.ctc_loss(logits, pad, train_labels[rows], label_pad[rows]).mean()

        def evaluate_fold(model, fold):
            del fold
            logits = model(test_x, deterministic=True)
            return {"blank_rate": (logits.argmax(-1) == BLANK).mean()}

        seeds = cfg.ctc_seeds
        rows = np.broadcast_to(np.arange(len(train_w)), (seeds, len(train_w)))
        keys = jax.random.split(jax.random.key(cfg.seed + 100), seeds)
        log(f"connected/{arm}: BiGRU-CTC, {seeds} seed(s) vmapped, {steps} steps per utterance")
        t1 = time.perf_counter()
        graphdef, params, curve = _train(
            make, loss_fn, evaluate_fold, rows, keys, jnp.arange(seeds), epochs=cfg.ctc_epochs,
            batch_size=cfg.ctc_batch_size, lr=cfg.ctc_learning_rate, num_evals=cfg.num_evals,
            clip=1.0, log=log, label=f"connected/{arm}")
        decode = lambda p, g=graphdef: nnx.merge(g, p)(test_x, deterministic=True)
        logits = np.asarray(jax.jit(jax.vmap(decode))(params))
        errors, total, per_seed = 0, 0, []
        for s in range(seeds):
            hyps = greedy_decode(logits[s])
            e = sum(edit_distance(h, list(test_y[i, : test_n[i]] - 1))
                    for i, h in enumerate(hyps))
            per_seed.append(e / int(test_n.sum()))
            errors, total = errors + e, total + int(test_n.sum())
        hyps = greedy_decode(logits[0])
        examples = [{"reference": "".join(map(str, test_y[i, : test_n[i]] - 1)),
                     "decoded": "".join(map(str, hyps[i]))} for i in range(min(5, len(hyps)))]
        result = {"arm": arm, "digit_error_rate": errors / total, "per_seed": per_seed,
                  "test_speakers": list(cfg.ctc_test_speakers), "curve": curve,
                  "examples": examples, "seconds": round(time.perf_counter() - t1, 1)}
        (folder / f"{arm}.json").write_text(json.dumps(result, indent=1))
        results[arm] = result
        log(f"connected/{arm}: digit error rate {result['digit_error_rate']:.4f} "
            f"(seeds {', '.join(f'{x:.4f}' for x in per_seed)}; {result['seconds']:.0f} s)")
    return results


# ----------------------------------------------------------------------------- MC dropout


def run_mc(cfg, workdir: Path, clips, feats, log) -> dict | None:
    path = workdir / "mc.json"
    if path.exists():
        log("mc: done already")
        return json.loads(path.read_text())
    params_path = workdir / "isolated" / f"{cfg.mc_arm}_loso_params.npz"
    if not params_path.exists():
        log(f"mc: skipped, no LOSO models of arm {cfg.mc_arm!r} ({params_path})")
        return None
    splits = isolated_splits(dataclasses.replace(cfg, official=False, loso=True), clips)
    _, tests = splits["loso"]
    folds = tests["unseen"].shape[0]
    n_frames = feats.shape[1]
    make = lambda k: _make_model(cfg, cfg.mc_arm, n_frames, k)
    graphdef, like = _stacked_init(make, jax.random.split(jax.random.key(0), folds))
    params = _load_params(params_path, like)
    dfeats = jnp.asarray(feats)

    @jax.jit
    def mc_log_probs(p, rows, key):
        model = nnx.merge(graphdef, p)
        keys = jax.random.split(key, cfg.mc_samples)
        return jax.lax.map(lambda k: jax.nn.log_softmax(model(dfeats[rows], key=k)), keys)

    t0 = time.perf_counter()
    labels = clips["labels"]
    mi, correct, is_unseen, per_fold = [], [], [], []
    for f in range(folds):
        p = jax.tree.map(lambda x, f=f: x[f], params)
        parts = {}
        for name in ("unseen", "seen"):
            rows = tests[name][f]
            lp = mc_log_probs(p, jnp.asarray(rows), jax.random.key(cfg.seed + 10 + f))
            mean_probs = jnp.exp(lp).mean(0)
            parts[name] = (np.asarray(mutual_information(lp)),
                           np.asarray(mean_probs.argmax(-1)) == labels[rows])
        scores = np.concatenate([parts["unseen"][0], parts["seen"][0]])
        flags = np.concatenate([np.ones(len(parts["unseen"][0]), np.int32),
                                np.zeros(len(parts["seen"][0]), np.int32)])
        fold_auroc = float(auroc(jnp.asarray(scores), jnp.asarray(flags)))
        per_fold.append({"speaker": clips.speaker_names[f], "mi_auroc": fold_auroc,
                         "unseen_mc_accuracy": float(parts["unseen"][1].mean()),
                         "seen_mc_accuracy": float(parts["seen"][1].mean()),
                         "unseen_mean_mi": float(parts["unseen"][0].mean()),
                         "seen_mean_mi": float(parts["seen"][0].mean())})
        mi.append(scores)
        correct.append(np.concatenate([parts["unseen"][1], parts["seen"][1]]))
        is_unseen.append(flags)
    mi, correct, is_unseen = map(np.concatenate, (mi, correct, is_unseen))
    # accuracy vs rejection on the unseen speakers' utterances: reject the highest MI first
    unseen_mi, unseen_ok = mi[is_unseen == 1], correct[is_unseen == 1]
    order = np.argsort(-unseen_mi, kind="stable")
    fractions = np.round(np.arange(0.0, 0.95, 0.05), 2)
    curve = []
    for frac in fractions:
        kept = order[int(round(frac * len(order))):]
        curve.append({"rejected": float(frac), "accuracy": float(unseen_ok[kept].mean())})
    error_auroc = float(auroc(jnp.asarray(unseen_mi), jnp.asarray((~unseen_ok).astype(np.int32))))
    result = {
        "arm": cfg.mc_arm, "mc_samples": cfg.mc_samples,
        "mi_auroc": float(np.mean([f["mi_auroc"] for f in per_fold])),
        "mi_auroc_std": float(np.std([f["mi_auroc"] for f in per_fold])),
        "mi_auroc_pooled": float(auroc(jnp.asarray(mi), jnp.asarray(is_unseen))),
        "error_auroc": error_auroc,
        "per_fold": per_fold, "rejection_curve": curve,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    path.write_text(json.dumps(result, indent=1))
    log(f"mc: MI AUROC unseen vs seen {result['mi_auroc']:.3f} +- {result['mi_auroc_std']:.3f};"
        f" error AUROC {error_auroc:.3f}; accuracy {curve[0]['accuracy']:.3f} -> "
        f"{curve[4]['accuracy']:.3f} at 20% rejected")
    return result


# ----------------------------------------------------------------------------- reports


ARM_TITLES = {
    "none": "CNN, no dropout", "standard": "CNN, standard dropout",
    "spatial": "CNN, spatial dropout", "rnn_none": "BiGRU, no dropout",
    "recurrent": "BiGRU, variational recurrent dropout", "specaugment": "CNN, SpecAugment",
    "specaugment_dropout": "CNN, SpecAugment + spatial dropout",
    "vtlp": "CNN, VTLP", "vtlp_dropout": "CNN, VTLP + standard dropout",
    "ctc_none": "BiGRU-CTC, no dropout", "ctc_dropout": "BiGRU-CTC, variational dropout",
}


def summarize(cfg, isolated: dict, connected: dict, mc: dict | None) -> dict:
    out = {"config": dataclasses.asdict(cfg), "isolated": {}, "connected": {}, "mc": None}
    isolated = {a: isolated[a] for a in config_lib.ARMS if a in isolated}
    connected = {a: connected[a] for a in config_lib.CTC_ARMS if a in connected}
    for arm, r in isolated.items():
        out["isolated"][arm] = {k: r[k] for k in ("official_accuracy", "loso_accuracy",
                                                  "loso_std", "loso_fold_accuracy",
                                                  "loso_seen_accuracy", "seconds") if k in r}
    for arm, r in connected.items():
        out["connected"][arm] = {k: r[k] for k in ("digit_error_rate", "per_seed", "seconds")}
    if mc is not None:
        out["mc"] = {k: mc[k] for k in ("arm", "mi_auroc", "mi_auroc_std", "mi_auroc_pooled",
                                        "error_auroc", "rejection_curve")}
    official = {a: r["official_accuracy"] for a, r in isolated.items() if "official_accuracy" in r}
    loso = {a: r["loso_accuracy"] for a, r in isolated.items() if "loso_accuracy" in r}
    if official:
        best = max(official, key=official.get)
        out["official_accuracy"], out["official_accuracy_arm"] = official[best], best
    if loso:
        best = max(loso, key=loso.get)
        out["loso_accuracy"], out["loso_accuracy_arm"] = loso[best], best
        if "none" in loso:
            out["loso_gain_over_none"] = loso[best] - loso["none"]
    if "ctc_dropout" in connected:
        out["digit_error_rate"] = connected["ctc_dropout"]["digit_error_rate"]
        out["digit_error_rate_arm"] = "ctc_dropout"
    if "ctc_none" in connected:
        out["digit_error_rate_no_dropout"] = connected["ctc_none"]["digit_error_rate"]
    return out


def markdown(summary: dict) -> str:
    lines = ["## Isolated digits (FSDD)", "",
             "| arm | official split | leave-one-speaker-out (mean +- std over 6 folds) "
             "| LOSO seen speakers |", "|---|---|---|---|"]
    for arm, r in summary["isolated"].items():
        off = f"{100 * r['official_accuracy']:.1f}%" if "official_accuracy" in r else "-"
        loso = (f"{100 * r['loso_accuracy']:.1f}% +- {100 * r['loso_std']:.1f}"
                if "loso_accuracy" in r else "-")
        seen = f"{100 * r['loso_seen_accuracy']:.1f}%" if "loso_seen_accuracy" in r else "-"
        lines.append(f"| {ARM_TITLES.get(arm, arm)} | {off} | {loso} | {seen} |")
    if summary["connected"]:
        lines += ["", "## Connected digits (CTC, held-out speakers)", "",
                  "| arm | digit error rate |", "|---|---|"]
        for arm, r in summary["connected"].items():
            lines.append(f"| {ARM_TITLES.get(arm, arm)} | {100 * r['digit_error_rate']:.1f}% |")
    mc = summary.get("mc")
    if mc:
        curve = {c["rejected"]: c["accuracy"] for c in mc["rejection_curve"]}
        lines += ["", f"## MC dropout ({ARM_TITLES.get(mc['arm'], mc['arm'])}, LOSO models)", "",
                  f"- mutual information, unseen vs seen speakers: AUROC "
                  f"{mc['mi_auroc']:.3f} +- {mc['mi_auroc_std']:.3f} over folds",
                  f"- mutual information flags errors on unseen speakers: AUROC "
                  f"{mc['error_auroc']:.3f}",
                  f"- accuracy on unseen speakers after rejecting the most uncertain 0% / 10% / "
                  f"20% / 50%: {100 * curve[0.0]:.1f}% / {100 * curve[0.1]:.1f}% / "
                  f"{100 * curve[0.2]:.1f}% / {100 * curve[0.5]:.1f}%"]
    return "\n".join(lines) + "\n"


def plots(workdir: Path, isolated: dict, connected: dict, mc: dict | None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    best = max((a for a in isolated if "loso_confusion" in isolated[a]),
               key=lambda a: isolated[a]["loso_accuracy"], default=None)
    if best is not None:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        conf = np.asarray(isolated[best]["loso_confusion"])
        ax.imshow(conf, cmap="Blues")
        for i in range(DIGITS):
            for j in range(DIGITS):
                if conf[i, j]:
                    ax.text(j, i, conf[i, j], ha="center", va="center", fontsize=6)
        ax.set(xlabel="predicted digit", ylabel="spoken digit", xticks=range(10),
               yticks=range(10), title=f"LOSO confusion: {ARM_TITLES.get(best, best)}")
        ax.title.set_fontsize(8)
        fig.tight_layout()
        written.append(workdir / "confusion.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, r in isolated.items():
        curve = r.get("loso_curve")
        if curve:
            ax.plot([c["epoch"] for c in curve],
                    [100 * np.mean(c["unseen_accuracy"]) for c in curve],
                    marker="o", label=ARM_TITLES.get(arm, arm))
    ax.set(xlabel="epoch", ylabel="unseen-speaker accuracy (%)",
           title="Leave-one-speaker-out learning curves (mean over folds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(workdir / "learning_curves.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    if mc is not None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        c = mc["rejection_curve"]
        ax.plot([100 * x["rejected"] for x in c], [100 * x["accuracy"] for x in c], marker="o",
                label="reject highest MI first")
        ax.axhline(100 * c[0]["accuracy"], color="grey", ls="--", label="random rejection")
        ax.set(xlabel="utterances rejected (%)", ylabel="accuracy on the rest (%)",
               title="Unseen speakers: accuracy vs rejection (MC dropout)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(workdir / "rejection_curve.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


# ----------------------------------------------------------------------------- entry


def train_and_evaluate(cfg, workdir) -> dict:
    """Runs the parts of ``cfg``; writes per-arm JSON, ``speech.json``/``.md`` and plots."""
    check_config(cfg)
    # optax's schedules and bias corrections mix Python floats with int32 step counts
    with jax.numpy_dtype_promotion("standard"):
        return _train_and_evaluate(cfg, workdir)


def _train_and_evaluate(cfg, workdir) -> dict:
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = lambda message: _log(cfg, message)
    t0 = time.perf_counter()
    clips = load_wav_folder(cfg.data_dir)
    if clips.sample_rate != SAMPLE_RATE:
        raise ValueError(f"expected 8 kHz FSDD clips, got {clips.sample_rate} Hz")
    keep = np.flatnonzero(clips["indices"] < cfg.clips_per_digit)
    clips = dataclasses.replace(clips, data=jdrop.data.ArrayDataset(clips.data.take(keep)))
    isolated, connected, mc = {}, {}, None
    feats = None
    if "isolated" in cfg.parts or "mc" in cfg.parts:
        waves = np.zeros((len(clips), cfg.clip_samples), np.float32)
        for i, (w, n) in enumerate(zip(clips["waveforms"], clips["lengths"], strict=True)):
            n = int(n)
            start = max((n - cfg.clip_samples) // 2, 0)
            seg = w[start : start + min(n, cfg.clip_samples)]
            waves[i, : len(seg)] = seg
        feats = log_mels(cfg, waves)
        log(f"features: {feats.shape} log-mels of {len(clips)} clips "
            f"({time.perf_counter() - t0:.1f} s)")
    if "isolated" in cfg.parts:
        isolated = run_isolated(cfg, workdir, clips, feats, log)
    if "connected" in cfg.parts:
        connected = run_connected(cfg, workdir, clips, log)
    if "mc" in cfg.parts:
        mc = run_mc(cfg, workdir, clips, feats, log)
    # every finished arm in the work dir goes into the summary (parts may run separately)
    for arm in config_lib.ARMS:
        path = workdir / "isolated" / f"{arm}.json"
        if arm not in isolated and path.exists():
            isolated[arm] = json.loads(path.read_text())
    for arm in config_lib.CTC_ARMS:
        path = workdir / "connected" / f"{arm}.json"
        if arm not in connected and path.exists():
            connected[arm] = json.loads(path.read_text())
    if mc is None and (workdir / "mc.json").exists():
        mc = json.loads((workdir / "mc.json").read_text())
    summary = summarize(cfg, isolated, connected, mc)
    summary["wall_seconds_this_call"] = round(time.perf_counter() - t0, 1)
    (workdir / "speech.json").write_text(json.dumps(summary, indent=1))
    (workdir / "speech.md").write_text(markdown(summary))
    plots(workdir, isolated, connected, mc)
    log(markdown(summary))
    return summary


__all__ = ["check_config", "edit_distance", "greedy_decode", "synthesize",
           "train_and_evaluate"]
