"""Multi30k En->De with a Transformer: dropout arms, validation BLEU, beam search, MC-dropout QE.

Each arm trains a :class:`jdrop.models.TransformerSeq2Seq` from scratch (label-smoothed
cross-entropy, Adam with the inverse-square-root warm-up, length-bucketed batches of
``max_tokens`` padded positions) and, after every epoch, translates the validation set
greedily and scores it with sacreBLEU; early stopping watches that BLEU and keeps the best
epoch's parameters. The best parameters then translate test_2016_flickr with beam search
(``beam_width``, GNMT length penalty). Into the workdir go:

* ``arms/<arm>.json`` (written as soon as the arm ends; a finished arm is not run again):
  ``bleu``, ``bleu_lc_tok``, ``chrf`` on the test set, the best validation BLEU, the
  per-epoch curves (training loss, validation NLL and BLEU, dropout rate), wall time and
  training tokens/s;
* ``translations/<arm>.txt``: the test translations;
* ``runs/<arm>/``: orbax checkpoints (every ``checkpoint_every`` steps and at every epoch
  end: a killed run resumes where it stopped and ends with the same result) and
  ``best.msgpack``;
* ``quality.json`` and ``quality_scatter.png``: MC-dropout quality estimation
  (Fomicheva et al. 2020) for the best dropout arm: ``mc_samples`` dropout passes over
  its own test translations give the mean and variance of each sentence's
  log-probability; Spearman's rho of each indicator (and of the deterministic
  log-probability) with sentence chrF, bootstrap intervals;
* ``translation.json``, ``translation.md`` (the table) and ``learning_curves.png``.

Implementation notes. The training step is :func:`jdrop.train.make_train_step` (jitted,
state donated, step ``t`` uses the key ``fold_in(key, t)``), driven by this module's loop
because the early-stopping metric, BLEU, is a corpus score (not a mean over batches).
Batches are padded to multiples of ``pad_to_multiple`` positions and to a fixed row count
per shape (``pad_rows``), so the step compiles once per ``(S, T)`` shape; decoding
batches have a fixed row count too. JAX's persistent compilation cache
(``<workdir>/jax_cache``) lets a rerun, a resumed run and arms sharing a program skip
compilation. R-Drop runs the two dropout passes as one batch of twice the rows
(Liang et al.'s implementation). Curriculum dropout changes the rate between programs:
the rate is ``high_rate * (1 - exp(-gamma t))`` rounded down to ``curriculum_quantum``
(:func:`jdrop.train.curriculum_rate`), one compiled step per distinct rate (a layer's rate
is a Python float in jdrop, so it cannot be traced). With ``data_parallel`` the rows of
each training batch are sharded over every local device (padded with empty rows to a
multiple of the device count); decoding runs on the replicated parameters. Training
tokens/s counts the real source and target tokens once per pair (R-Drop's second pass
is not counted again).

References:
  Vaswani et al. "Attention Is All You Need". NeurIPS 2017.
  Elliott et al. "Multi30K: Multilingual English-German Image Descriptions". 2016.
  Liang et al. "R-Drop: Regularized Dropout for Neural Networks". NeurIPS 2021.
  Morerio et al. "Curriculum Dropout". ICCV 2017.
  Fomicheva et al. "Unsupervised Quality Estimation for Neural Machine Translation".
  TACL 2020.
  Wu et al. "Google's Neural Machine Translation System". arXiv:1609.08144, 2016.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization

from experiments.translation import config as configs
from experiments.translation import metrics as mt_metrics
from experiments.translation import quality as qe
from jdrop.data import (
    SubwordTokenizer,
    load_multi30k,
    load_tfds_translation,
    num_translation_batches,
    source_batches,
    translation_batches,
)
from jdrop.models import TransformerSeq2Seq, beam_search, greedy_decode, param_count
from jdrop.nn import pure_apply
from jdrop.train import (
    Checkpointer,
    EarlyStopping,
    EarlyStoppingState,
    create_train_state,
    curriculum_rate,
    global_batch,
    inverse_sqrt_schedule,
    label_smoothed_cross_entropy,
    make_mesh,
    make_train_step,
    rdrop_loss,
)

DROPOUT_ARMS = tuple(a for a in configs.ARMS if a != "none")
TEST_SPLIT = "test_2016_flickr"
SITES = ("embedding_dropout", "residual_dropout", "attention_dropout", "ffn_dropout")


def check_config(c: configs.Config) -> None:
    """Raises ``ValueError`` naming the flag of an invalid setting."""
    unknown = set(c.arms) - set(configs.ARMS)
    if unknown:
        raise ValueError(f"--arms: unknown {sorted(unknown)}; choose from {configs.ARMS}")
    if c.features % c.num_heads:
        raise ValueError(f"--features ({c.features}) must be divisible by --num_heads "
                         f"({c.num_heads})")
    if c.val_max_length > c.max_length:
        raise ValueError(f"--val_max_length ({c.val_max_length}) must be <= --max_length "
                         f"({c.max_length})")
    for name in ("low_rate", "high_rate"):
        if not 0 <= getattr(c, name) < 1:
            raise ValueError(f"--{name} must be in [0, 1), got {getattr(c, name)}")
    if c.max_tokens < c.max_length:
        raise ValueError(f"--max_tokens ({c.max_tokens}) must be >= --max_length "
                         f"({c.max_length}): one pair must fit a batch")
    if c.mc_samples < 2:
        raise ValueError(f"--mc_samples must be >= 2, got {c.mc_samples}")
    if c.epochs < 1 or c.patience < 1:
        raise ValueError(f"--epochs and --patience must be >= 1, got {c.epochs}, {c.patience}")


# ----------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class Corpus:
    tokenizer: SubwordTokenizer
    train: tuple[list[np.ndarray], list[np.ndarray]]  # subword ids (source, target)
    val_sources: list[np.ndarray]
    val_references: list[str]
    test_sources: list[np.ndarray]
    test_source_texts: list[str]
    test_references: list[str]
    full_sizes: dict[str, int]


def load_pairs(c: configs.Config) -> dict[str, tuple[list[str], list[str]]]:
    """``{"train", "val", TEST_SPLIT: (sources, targets)}``: Multi30k's train / val /
    test_2016_flickr, or the three ``tfds_splits`` of the TFDS set ``tfds_name``."""
    if c.tfds_name is None:
        return load_multi30k(c.data_dir, source=c.source, target=c.target,
                             splits=("train", "val", TEST_SPLIT))
    if len(c.tfds_splits) != 3:
        raise ValueError(f"--tfds_splits needs three splits (train, validation, test), got "
                         f"{c.tfds_splits}")
    data = load_tfds_translation(c.tfds_name, source=c.source, target=c.target,
                                 splits=c.tfds_splits, data_dir=c.tfds_data_dir,
                                 download=c.tfds_download)
    return dict(zip(("train", "val", TEST_SPLIT), data.values(), strict=True))


def load(c: configs.Config, workdir: Path) -> Corpus:
    """The parallel text (:func:`load_pairs`), cut as configured, and the joint subword
    vocabulary trained on the training pairs (cached in ``<workdir>/spm``)."""
    data = load_pairs(c)
    sizes = {split: len(pair[0]) for split, pair in data.items()}
    cut = {"train": c.max_train_pairs, "val": c.max_val_pairs, TEST_SPLIT: c.max_test_pairs}
    data = {s: (src[: cut[s]], tgt[: cut[s]]) if cut[s] else (src, tgt)
            for s, (src, tgt) in data.items()}
    train_src, train_tgt = data["train"]
    tokenizer = SubwordTokenizer.train(train_src + train_tgt, vocab_size=c.vocab_size,
                                       cache_dir=workdir / "spm", seed=c.seed)
    return Corpus(
        tokenizer=tokenizer,
        train=(tokenizer.encode(train_src), tokenizer.encode(train_tgt)),
        val_sources=tokenizer.encode(data["val"][0]),
        val_references=list(data["val"][1]),
        test_sources=tokenizer.encode(data[TEST_SPLIT][0]),
        test_source_texts=list(data[TEST_SPLIT][0]),
        test_references=list(data[TEST_SPLIT][1]),
        full_sizes=sizes,
    )


def train_batches(c: configs.Config, corpus: Corpus, epoch: int, start: int = 0):
    return translation_batches(
        *corpus.train, max_tokens=c.max_tokens, shuffle=True, seed=c.seed, epoch=epoch,
        start_batch=start, pad_to_multiple=c.pad_to_multiple, max_length=c.max_length,
        pad_rows=True,
    )


def eval_rows(c: configs.Config) -> int:
    """Rows of every decoding batch (a fixed count: one compiled decoder per source width)."""
    return max(1, c.eval_max_tokens // c.max_length)


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(array, [(0, rows - len(array))] + [(0, 0)] * (array.ndim - 1))


def pad_rows_to_multiple(batch: dict, multiple: int) -> dict:
    """``batch`` with empty rows (ids 0, masks ``False``: no loss) added up to a multiple
    of ``multiple`` rows, so the rows split evenly over the devices."""
    rows = len(batch["source"])
    target = -(-rows // multiple) * multiple
    return batch if target == rows else {k: _pad_rows(v, target) for k, v in batch.items()}


# ----------------------------------------------------------------------------- model


def arm_rates(c: configs.Config, arm: str, rate: float | None = None) -> dict[str, float]:
    """The four dropout rates of an arm (``rate``: the curriculum's current rate)."""
    if arm == "none":
        return dict.fromkeys(SITES, 0.0)
    if arm in ("p0.1", "rdrop"):
        return dict.fromkeys(SITES, c.low_rate)
    if arm == "p0.3":
        return dict.fromkeys(SITES, c.high_rate)
    if arm == "p0.3_no_attn":
        return dict(dict.fromkeys(SITES, c.high_rate), attention_dropout=0.0)
    if arm == "curriculum":
        return dict.fromkeys(SITES, c.high_rate if rate is None else rate)
    raise ValueError(f"unknown arm {arm!r}; choose from {configs.ARMS}")


def build(c: configs.Config, vocab_size: int, rates: dict[str, float]) -> TransformerSeq2Seq:
    return TransformerSeq2Seq(
        vocab_size, features=c.features, num_heads=c.num_heads, ffn_features=c.ffn_features,
        encoder_layers=c.encoder_layers, decoder_layers=c.decoder_layers,
        max_length=c.max_length, rngs=nnx.Rngs(c.seed), **rates,
    )


@functools.lru_cache(maxsize=8)
def make_loss_fn(smoothing: float, rdrop_alpha: float | None):
    """``loss_fn(model, batch, key, carry)`` for :func:`jdrop.train.make_train_step`.

    Label-smoothed cross-entropy over the real target tokens; with ``rdrop_alpha`` the
    R-Drop loss of two dropout passes (the batch repeated: one forward over ``2B`` rows,
    so every row gets two independent masks). Reports ``nll`` (per-token negative
    log-likelihood, no smoothing) and, for R-Drop, ``kl``.
    """

    def loss_fn(model, batch, key, carry):
        keys = dict(key=key, deterministic=key is None)
        if rdrop_alpha is None:
            logits = model(batch["source"], batch["target_in"], source_mask=batch["source_mask"],
                           target_mask=batch["target_mask"], **keys)
            loss = label_smoothed_cross_entropy(logits, batch["target_out"],
                                                batch["target_mask"], smoothing=smoothing)
            metrics = {}
        else:
            twice = {name: jnp.concatenate([v, v], axis=0) for name, v in batch.items()}
            both = model(twice["source"], twice["target_in"], source_mask=twice["source_mask"],
                         target_mask=twice["target_mask"], **keys)
            logits, other = jnp.split(both, 2, axis=0)
            loss, (_, kl) = rdrop_loss(logits, other, batch["target_out"], batch["target_mask"],
                                       alpha=rdrop_alpha, smoothing=smoothing)
            metrics = {"kl": kl}
        nll = label_smoothed_cross_entropy(jax.lax.stop_gradient(logits), batch["target_out"],
                                           batch["target_mask"], smoothing=0.0)
        return loss, ({"nll": nll, **metrics}, carry)

    return loss_fn


def make_tx(c: configs.Config) -> optax.GradientTransformation:
    """AdamW (``b2 = adam_b2``, decay on matrices only) with the inverse-sqrt schedule and
    gradient clipping. The same settings give the same object (and so, in one process,
    the same compiled step: a resumed arm does not compile again)."""
    return _tx(c.learning_rate, c.warmup_steps, c.adam_b2, c.weight_decay, c.clip_norm)


def _matrices(params):
    return jax.tree.map(lambda x: x.ndim >= 2, params)


@functools.lru_cache(maxsize=8)
def _tx(learning_rate, warmup_steps, b2, weight_decay, clip_norm):
    schedule = inverse_sqrt_schedule(learning_rate, warmup_steps)
    parts = [] if clip_norm is None else [optax.clip_by_global_norm(clip_norm)]
    parts.append(optax.adamw(schedule, b1=0.9, b2=b2, eps=1e-9, weight_decay=weight_decay,
                             mask=_matrices))
    return optax.chain(*parts)


# ----------------------------------------------------------------------------- decoding


def translate(c: configs.Config, model, sources, tokenizer, *, beam: bool) -> list[str]:
    """Detokenised translations of ``sources`` (greedy, or beam search), in order."""
    rows = eval_rows(c)
    batches, _ = source_batches(sources, batch_size=rows, pad_to_multiple=c.pad_to_multiple,
                                max_length=c.max_length)
    outputs: list[str | None] = [None] * len(sources)
    for batch in batches:
        n = len(batch["index"])
        src = _pad_rows(batch["source"], rows)
        mask = _pad_rows(batch["source_mask"], rows)
        mask[n:, 0] = True  # padding rows: one (pad) token, so every row attends somewhere
        if beam:
            ids, _ = beam_search(model, src, mask, beam_width=c.beam_width,
                                 length_penalty=c.length_penalty, max_length=c.val_max_length)
        else:
            ids = greedy_decode(model, src, mask, max_length=c.val_max_length)
        texts = tokenizer.decode(np.asarray(ids)[:n])
        for index, text in zip(batch["index"], texts, strict=True):
            outputs[int(index)] = text
    return outputs


@functools.partial(jax.jit, static_argnums=0)
def _val_nll(graphdef, state, batch):
    """Summed teacher-forced negative log-likelihood of a batch's real target tokens."""
    model = nnx.merge(graphdef, state)
    logits = model(batch["source"], batch["target_in"], source_mask=batch["source_mask"],
                   target_mask=batch["target_mask"], deterministic=True)
    lp = jax.nn.log_softmax(logits)
    tok = jnp.take_along_axis(lp, batch["target_out"][..., None], -1)[..., 0]
    return -jnp.sum(jnp.where(batch["target_mask"], tok, 0.0))


# ----------------------------------------------------------------------------- one arm


def _host(tree):
    return jax.tree.map(np.asarray, tree)


def save_params(params, path: Path) -> None:
    path.write_bytes(serialization.msgpack_serialize(_host(params.to_pure_dict())))


def load_params(model, path: Path):
    state = nnx.state(model, nnx.Param)
    state.replace_by_pure_dict(
        jax.tree.map(jnp.asarray, serialization.msgpack_restore(path.read_bytes())))
    nnx.update(model, state)
    return model


class _Stopped(Exception):
    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


def run_arm(c: configs.Config, arm: str, corpus: Corpus, workdir: Path) -> dict | None:
    """Trains one arm with early stopping on validation BLEU, evaluates it on the test set
    with beam search; returns (and writes) its record (``None`` when ``stop_after_steps``
    ended the call first)."""
    start_wall = time.perf_counter()
    tokenizer = corpus.tokenizer
    vocab = tokenizer.vocab_size
    run_dir = workdir / "runs" / arm
    run_dir.mkdir(parents=True, exist_ok=True)
    devices = jax.local_devices() if c.data_parallel else jax.local_devices()[:1]
    mesh = make_mesh(devices)
    steps_per_epoch = num_translation_batches(
        *corpus.train, max_tokens=c.max_tokens, seed=c.seed, epoch=0,
        pad_to_multiple=c.pad_to_multiple, max_length=c.max_length)
    total_steps = c.epochs * steps_per_epoch
    gamma = c.curriculum_gamma or 10.0 / total_steps

    def rate_at(step: int) -> float | None:
        if arm != "curriculum":
            return None
        return curriculum_rate(step, c.high_rate, gamma, quantum=c.curriculum_quantum)

    tx = make_tx(c)
    loss_fn = make_loss_fn(c.label_smoothing, c.rdrop_alpha if arm == "rdrop" else None)
    model = build(c, vocab, arm_rates(c, arm, rate_at(0)))
    graphdef, state = create_train_state(model, tx, jax.random.key(c.seed), mesh)
    eval_graphdef = nnx.split(build(c, vocab, arm_rates(c, "none")), nnx.Param, ...)[0]
    programs: dict[float | None, object] = {}

    def train_step_for(rate):
        if rate not in programs:
            g = graphdef if rate is None else nnx.split(
                build(c, vocab, arm_rates(c, arm, rate)), nnx.Param, ...)[0]
            programs[rate] = make_train_step(g, loss_fn, tx, mesh)
        return programs[rate]

    rule = EarlyStopping(metric="bleu", split="val", mode="max", patience=c.patience)
    es = rule.init()
    history: list[dict] = []
    epoch, start, best, partial = 0, 0, None, None
    # wall and process-CPU seconds (the CPU time is what a shared machine's load does not
    # inflate: on an idle machine, wall ~ CPU / cores used)
    timing = {"train_s": 0.0, "train_cpu_s": 0.0, "train_tokens": 0, "eval_s": 0.0}
    ckpt = Checkpointer(run_dir / "checkpoints", max_to_keep=1)
    if ckpt.latest_step is not None:
        state, meta, _, best = ckpt.restore(state, best_target={"params": state.params})
        epoch, start = int(meta["epoch"]), int(meta["step_in_epoch"])
        es = EarlyStoppingState.from_dict(meta["early_stopping"])
        history, timing, partial = meta["history"], meta["timing"], meta.get("partial")
        print(f"[translation] {arm}: resumed at step {int(state.step)} (epoch {epoch}, "
              f"batch {start})", flush=True)

    def save(at_epoch: int, at_batch: int, partial: dict | None = None) -> None:
        meta = {"epoch": at_epoch, "step_in_epoch": at_batch, "early_stopping": es.to_dict(),
                "history": history, "timing": timing, "partial": partial}
        ckpt.save(int(state.step), state, meta=meta, best=best)

    val_batches = list(translation_batches(
        corpus.val_sources, corpus.tokenizer.encode(corpus.val_references),
        max_tokens=c.eval_max_tokens, shuffle=False, pad_to_multiple=c.pad_to_multiple,
        max_length=c.max_length, pad_rows=True))
    bar = None
    if c.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=c.epochs * steps_per_epoch, initial=int(state.step), desc=arm,
                   dynamic_ncols=True)
    try:
        while epoch < c.epochs and not es.stop:
            losses = {"loss": 0.0, "nll": 0.0, "kl": 0.0, "n": 0}
            if start > 0 and partial:  # the epoch's running sums before the stop
                losses = dict(partial)
            t0, c0 = time.perf_counter(), time.process_time()
            k, stop_now = start, False
            batches = train_batches(c, corpus, epoch, start)
            upcoming = next(batches, None)
            while upcoming is not None:
                rate = rate_at(int(state.step))
                step_fn = train_step_for(rate)
                batch = pad_rows_to_multiple(upcoming, len(devices))
                state, out, _ = step_fn(state, global_batch(batch, mesh), None)
                timing["train_tokens"] += int(upcoming["source_mask"].sum()
                                              + upcoming["target_mask"].sum())
                k += 1
                for name in ("loss", "nll", "kl"):
                    if name in out:
                        losses[name] += float(out[name])
                losses["n"] += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=epoch, loss=f"{float(out['loss']):.3f}",
                                    **({} if rate is None else {"rate": rate}))
                upcoming = next(batches, None)
                step = int(state.step)
                stop_now = c.stop_after_steps is not None and step >= c.stop_after_steps
                periodic = c.checkpoint_every and step % c.checkpoint_every == 0
                if upcoming is not None and (stop_now or periodic):  # (epoch ends save below)
                    timing["train_s"] += time.perf_counter() - t0
                    timing["train_cpu_s"] += time.process_time() - c0
                    t0, c0 = time.perf_counter(), time.process_time()
                    save(epoch, k, partial=losses)
                    if stop_now:
                        raise _Stopped(step)
            jax.block_until_ready(state)
            timing["train_s"] += time.perf_counter() - t0
            timing["train_cpu_s"] += time.process_time() - c0
            # ---- validation: teacher-forced NLL and greedy BLEU
            t1 = time.perf_counter()
            eval_model = nnx.merge(eval_graphdef, state.params, state.model_state)
            eval_state = nnx.state(eval_model)
            nll_sum = sum(float(_val_nll(eval_graphdef, eval_state, b)) for b in val_batches)
            nll_tokens = sum(int(b["target_mask"].sum()) for b in val_batches)
            hyps = translate(c, eval_model, corpus.val_sources, tokenizer, beam=False)
            scores = mt_metrics.translation_scores(hyps, corpus.val_references)
            timing["eval_s"] += time.perf_counter() - t1
            es = rule.update(es, scores["bleu"], step=int(state.step), epoch=epoch)
            if es.best_epoch == epoch:
                best = {"params": jax.tree.map(jnp.copy, state.params)}
            n = max(losses["n"], 1)
            record = {"epoch": epoch + 1, "step": int(state.step),
                      "train_loss": losses["loss"] / n if losses["n"] else None,
                      "train_nll": losses["nll"] / n if losses["n"] else None,
                      "val_nll": nll_sum / max(nll_tokens, 1), "val_bleu": scores["bleu"],
                      "val_bleu_lc_tok": scores["bleu_lc_tok"], "val_chrf": scores["chrf"],
                      "rate": rate_at(int(state.step))}
            if arm == "rdrop" and losses["n"]:
                record["train_kl"] = losses["kl"] / n
            history.append(record)
            print(f"[translation] {arm} epoch {epoch + 1}: train loss "
                  f"{record['train_loss'] or float('nan'):.3f}, val nll {record['val_nll']:.3f}, "
                  f"val BLEU {scores['bleu']:.2f} (best {es.best:.2f} @ {es.best_epoch + 1})",
                  flush=True)
            epoch, start = epoch + 1, 0
            save(epoch, 0)
            if stop_now:
                raise _Stopped(int(state.step))
    except _Stopped as stop:
        print(f"[translation] {arm}: stopped at step {stop.step} (stop_after_steps); "
              "a later call resumes", flush=True)
        return None
    finally:
        if bar is not None:
            bar.close()
        ckpt.close()
    best_params = state.params if best is None else best["params"]
    save_params(best_params, run_dir / "best.msgpack")
    # ---- test: beam search with the best epoch's parameters
    t2 = time.perf_counter()
    best_model = nnx.merge(eval_graphdef, best_params, state.model_state)
    hyps = translate(c, best_model, corpus.test_sources, tokenizer, beam=True)
    test = mt_metrics.translation_scores(hyps, corpus.test_references)
    test_s = time.perf_counter() - t2
    (workdir / "translations").mkdir(parents=True, exist_ok=True)
    (workdir / "translations" / f"{arm}.txt").write_text("\n".join(hyps) + "\n", "utf-8")
    record = {
        "arm": arm,
        "bleu": test["bleu"],
        "bleu_lc_tok": test["bleu_lc_tok"],
        "chrf": test["chrf"],
        "val_bleu": float(es.best),
        "best_epoch": int(es.best_epoch) + 1,
        "epochs": len(history),
        "steps": int(state.step),
        "stopped_early": bool(es.stop),
        "rates": arm_rates(c, arm),
        "rdrop_alpha": c.rdrop_alpha if arm == "rdrop" else None,
        "curriculum_gamma": gamma if arm == "curriculum" else None,
        "params": param_count(best_model),
        "train_tokens": timing["train_tokens"],
        "train_s": round(timing["train_s"], 1),
        "train_tokens_per_s": round(timing["train_tokens"] / max(timing["train_s"], 1e-9), 1),
        "train_cpu_s": round(timing["train_cpu_s"], 1),
        "train_tokens_per_cpu_s": round(
            timing["train_tokens"] / max(timing["train_cpu_s"], 1e-9), 1),
        "eval_s": round(timing["eval_s"], 1),
        "test_decode_s": round(test_s, 1),
        # training (compilation included) + validation + test decoding, over every sitting
        "wall_s": round(timing["train_s"] + timing["eval_s"] + test_s, 1),
        "wall_s_this_call": round(time.perf_counter() - start_wall, 1),
        "curve": history,
    }
    (workdir / "arms").mkdir(parents=True, exist_ok=True)
    (workdir / "arms" / f"{arm}.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


# ----------------------------------------------------------------------------- MC-dropout QE


def _scoring_batches(sources, targets, rows: int, multiple: int, max_length: int):
    """Fixed-row batches, in order, of (source, translation) pairs for forced decoding."""
    n = len(sources)
    for lo in range(0, n, rows):
        idx = np.arange(lo, min(lo + rows, n))
        src = [np.asarray(sources[i])[:max_length] for i in idx]
        tgt = [np.asarray(targets[i])[: max_length - 1] for i in idx]
        s = -(-max(max(len(x) for x in src), 1) // multiple) * multiple
        t = -(-max(len(x) + 1 for x in tgt) // multiple) * multiple
        s, t = min(s, max_length), min(t, max_length)
        batch = {"source": np.zeros((rows, s), np.int32), "source_mask": np.zeros((rows, s), bool),
                 "target_in": np.zeros((rows, t), np.int32),
                 "target_out": np.zeros((rows, t), np.int32),
                 "target_mask": np.zeros((rows, t), bool)}
        for r, (a, b) in enumerate(zip(src, tgt, strict=True)):
            batch["source"][r, : len(a)] = a
            batch["source_mask"][r, : max(len(a), 1)] = True
            batch["target_in"][r, 0] = 1
            batch["target_in"][r, 1 : len(b) + 1] = b
            batch["target_out"][r, : len(b)] = b
            batch["target_out"][r, len(b)] = 2
            batch["target_mask"][r, : len(b) + 1] = True
        batch["source_mask"][len(idx):, 0] = True
        batch["index"] = np.pad(idx, (0, rows - len(idx)), constant_values=-1)  # -1: padding
        yield batch


def quality_estimation(c: configs.Config, arm: str, corpus: Corpus, workdir: Path) -> dict:
    """MC-dropout QE of ``arm``'s test translations (see the module docstring)."""
    start = time.perf_counter()
    model = load_params(build(c, corpus.tokenizer.vocab_size, arm_rates(c, arm)),
                        workdir / "runs" / arm / "best.msgpack")
    hyps = (workdir / "translations" / f"{arm}.txt").read_text("utf-8").split("\n")[:-1]
    n = len(hyps) if c.mc_max_pairs is None else min(len(hyps), c.mc_max_pairs)
    hyps, refs = hyps[:n], corpus.test_references[:n]
    sources = corpus.test_sources[:n]
    apply_fn, params = pure_apply(model)

    def logits_fn(key, source, target_in, source_mask, target_mask):
        return apply_fn(params, key, source, target_in, source_mask=source_mask,
                        target_mask=target_mask, deterministic=key is None)

    rows = max(1, c.eval_max_tokens // (2 * c.max_length))
    batches = _scoring_batches(sources, corpus.tokenizer.encode(hyps), rows,
                               c.pad_to_multiple, c.max_length)
    estimates = qe.quality_estimates(logits_fn, jax.random.key(c.seed + 7), batches,
                                     num_samples=c.mc_samples)
    indicators = qe.quality_indicators(estimates)
    chrf = mt_metrics.sentence_chrf(hyps, refs)
    shown = {k: indicators[k] for k in ("log_prob", "tp", "mc_mean", "neg_mc_var", "d_tp",
                                        "neg_d_var")}
    correlations = qe.rank_correlations(shown, chrf, num_bootstrap=c.bootstrap, seed=c.seed)
    versus = qe.correlation_difference(indicators["neg_mc_var"], indicators["log_prob"], chrf,
                                       num_bootstrap=c.bootstrap, seed=c.seed)
    versus_dvar = qe.correlation_difference(indicators["neg_d_var"], indicators["tp"], chrf,
                                            num_bootstrap=c.bootstrap, seed=c.seed)
    qe.quality_scatter(workdir / "quality_scatter.png",
                       {k: shown[k] for k in ("log_prob", "mc_mean", "neg_mc_var", "neg_d_var")},
                       chrf, correlations=correlations,
                       title=f"MC-dropout QE, {arm}, T={c.mc_samples}, {n} test sentences")
    record = {
        "arm": arm,
        "sentences": n,
        "mc_samples": c.mc_samples,
        "spearman": correlations,
        "neg_mc_var_minus_log_prob": versus,
        "neg_d_var_minus_tp": versus_dvar,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    (workdir / "quality.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


# ----------------------------------------------------------------------------- the study


def best_of(records: dict, arms) -> str | None:
    done = [a for a in arms if a in records]
    return max(done, key=lambda a: records[a]["val_bleu"]) if done else None


def train_and_evaluate(c: configs.Config, workdir) -> dict:
    """Runs the arms (skipping finished ones), the MC-dropout QE, and writes the results."""
    check_config(c)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if c.compilation_cache:  # reruns, resumed arms and arms sharing a program skip compiling
        jax.config.update("jax_compilation_cache_dir", os.fspath(workdir / "jax_cache"))
    start = time.perf_counter()
    corpus = load(c, workdir)
    records = {}
    for arm in configs.ARMS:
        path = workdir / "arms" / f"{arm}.json"
        if path.exists():
            records[arm] = json.loads(path.read_text())
    for arm in c.arms:
        if arm in records:
            continue
        print(f"[translation] arm {arm}: rates {arm_rates(c, arm)}", flush=True)
        record = run_arm(c, arm, corpus, workdir)
        if record is None:  # stop_after_steps: the rest of the study waits for a later call
            break
        records[arm] = r = record
        print(f"[translation] {arm}: test BLEU {r['bleu']:.2f} (lc tok {r['bleu_lc_tok']:.2f}, "
              f"chrF {r['chrf']:.2f}), val BLEU {r['val_bleu']:.2f} at epoch {r['best_epoch']}, "
              f"{r['train_tokens_per_s']:.0f} tokens/s, {r['wall_s']:.0f} s", flush=True)
    quality = None
    qe_arm = best_of(records, DROPOUT_ARMS)
    if qe_arm is not None:
        path = workdir / "quality.json"
        quality = json.loads(path.read_text()) if path.exists() else None
        if quality is None or quality["arm"] != qe_arm:
            quality = quality_estimation(c, qe_arm, corpus, workdir)
        s = quality["spearman"]
        print(f"[translation] QE {qe_arm}: Spearman with chrF: -mc_var "
              f"{s['neg_mc_var']['spearman']:.3f}, log_prob {s['log_prob']['spearman']:.3f}",
              flush=True)
    summary = {
        "data": {"name": c.tfds_name or "Multi30k",
                 "test_split": c.tfds_splits[2] if c.tfds_name else TEST_SPLIT,
                 "source": c.source, "target": c.target, "full_split_sizes": corpus.full_sizes,
                 "train_pairs": len(corpus.train[0]), "val_pairs": len(corpus.val_sources),
                 "test_pairs": len(corpus.test_sources),
                 "vocab_size": corpus.tokenizer.vocab_size},
        "config": dataclasses.asdict(c),
        "metric_signatures": mt_metrics.metric_signatures(),
        "arms": {a: {k: v for k, v in r.items() if k != "curve"} for a, r in records.items()},
        "quality": quality,
        "goals": goals(records, quality),
        "wall_s_this_call": round(time.perf_counter() - start, 1),
        "wall_s_arms": round(sum(r["wall_s"] for r in records.values()), 1),
        "backend": jax.default_backend(),
    }
    (workdir / "translation.json").write_text(json.dumps(summary, indent=1) + "\n")
    (workdir / "translation.md").write_text(markdown(summary))
    plot_curves(records, workdir, summary["data"]["name"])
    return summary


def goals(records: dict, quality: dict | None) -> dict:
    """The issue's goals, each true/false (absent while an arm is missing)."""
    out = {}
    if records:
        best = max(records, key=lambda a: records[a]["bleu_lc_tok"])
        out["best_arm"] = best
        out["best_bleu_lc_tok"] = records[best]["bleu_lc_tok"]
        out["best_ge_40_bleu_lc_tok"] = records[best]["bleu_lc_tok"] >= 40
    dropout = best_of(records, DROPOUT_ARMS)
    if "none" in records and dropout is not None:
        gain = records[dropout]["bleu_lc_tok"] - records["none"]["bleu_lc_tok"]
        out["best_dropout_arm"] = dropout
        out["dropout_gain_bleu_lc_tok"] = gain
        out["dropout_gain_ge_3"] = gain >= 3
    # each against plain dropout at its own rate: R-Drop adds its KL to p0.1's dropout,
    # curriculum dropout ramps up to p0.3's rate
    for arm, plain in (("rdrop", "p0.1"), ("curriculum", "p0.3")):
        if arm in records and plain in records:
            out[f"{arm}_minus_{plain}_bleu"] = records[arm]["bleu"] - records[plain]["bleu"]
    if quality is not None:
        s = quality["spearman"]
        out["mc_var_beats_log_prob"] = (s["neg_mc_var"]["spearman"]
                                        > s["log_prob"]["spearman"])
        out["mc_var_minus_log_prob_interval"] = [quality["neg_mc_var_minus_log_prob"]["low"],
                                                 quality["neg_mc_var_minus_log_prob"]["high"]]
    return out


ARM_TEXT = {
    "none": "no dropout",
    "p0.1": "dropout 0.1 (all places)",
    "p0.3": "dropout 0.3 (all places)",
    "p0.3_no_attn": "dropout 0.3, no attention dropout",
    "rdrop": "dropout 0.1 + R-Drop",
    "curriculum": "curriculum dropout 0 -> 0.3",
}


def markdown(summary: dict) -> str:
    d = summary["data"]
    c = summary["config"]
    lines = [
        f"# {d['name']} {d['source']}->{d['target']}: Transformer dropout arms (issue 12)",
        "",
        f"Training on {d['train_pairs']:,} pairs; validation BLEU (greedy) on "
        f"{d['val_pairs']:,} pairs picks the epoch; {d['test_split']} ({d['test_pairs']:,} "
        f"sentences) with beam search (width {c['beam_width']}, length penalty "
        f"{c['length_penalty']}). Model: d={c['features']}, {c['encoder_layers']}+"
        f"{c['decoder_layers']} layers, {c['num_heads']} heads, FFN {c['ffn_features']}, "
        f"joint vocabulary {d['vocab_size']}. `bleu`: sacreBLEU on detokenised text; "
        "`bleu_lc_tok`: lowercased, 13a-tokenised (the Multi30k literature's); `chrf`: chrF2.",
        "",
        "| arm | bleu | bleu_lc_tok | chrf | val BLEU | best epoch / epochs | tokens/s | "
        "wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in summary["arms"].items():
        lines.append(
            f"| {ARM_TEXT.get(arm, arm)} | {r['bleu']:.2f} | {r['bleu_lc_tok']:.2f} | "
            f"{r['chrf']:.2f} | {r['val_bleu']:.2f} | {r['best_epoch']} / {r['epochs']} | "
            f"{r['train_tokens_per_s']:.0f} | {r['wall_s']:.0f} |")
    q = summary["quality"]
    if q:
        lines += ["", f"MC-dropout quality estimation ({q['arm']}, T={q['mc_samples']}, "
                  f"{q['sentences']} test sentences): Spearman with sentence chrF, 95% "
                  "bootstrap interval (indicators oriented higher = better).", "",
                  "| indicator | Spearman | interval |", "|---|---|---|"]
        for name, v in q["spearman"].items():
            lines.append(f"| {name} | {v['spearman']:.3f} | [{v['low']:.3f}, {v['high']:.3f}] |")
        v = q["neg_mc_var_minus_log_prob"]
        lines += ["", f"-mc_var minus log_prob: {v['difference']:.3f} "
                  f"[{v['low']:.3f}, {v['high']:.3f}] (paired bootstrap)."]
    lines += ["", "Goals: " + ", ".join(f"{k}: {v}" for k, v in summary["goals"].items()), ""]
    return "\n".join(lines)


def plot_curves(records: dict, workdir: Path, name: str = "Multi30k") -> None:
    if not records:
        return
    from jdrop.report import pyplot

    plt = pyplot()
    fig, (ax_bleu, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (arm, r) in enumerate(records.items()):
        curve = r["curve"]
        epochs = [h["epoch"] for h in curve]
        label = ARM_TEXT.get(arm, arm)
        ax_bleu.plot(epochs, [h["val_bleu"] for h in curve], "-o", ms=3, color=f"C{i}",
                     label=label)
        ax_loss.plot(epochs, [h["val_nll"] for h in curve], "-", color=f"C{i}", label=label)
        train = [(h["epoch"], h["train_nll"]) for h in curve if h["train_nll"] is not None]
        if train:
            ax_loss.plot(*zip(*train, strict=True), ":", color=f"C{i}")
    ax_bleu.set_xlabel("epoch")
    ax_bleu.set_ylabel("validation BLEU (greedy)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("NLL per token")
    ax_loss.set_title("validation (solid), training with dropout on (dotted)", fontsize=9)
    ax_bleu.legend(fontsize=7)
    ax_bleu.set_title(f"{name}: validation BLEU per epoch")
    fig.tight_layout()
    fig.savefig(workdir / "learning_curves.png", dpi=90)
    plt.close(fig)
