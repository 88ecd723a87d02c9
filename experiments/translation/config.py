"""Configuration of ``experiments.translation`` (issue 12: a Transformer on Multi30k En->De).

    python -m experiments.translation --workdir /tmp/mt           # the study (GPU/TPU)
    python -m experiments.translation --workdir /tmp/mt --cpu     # the reduced CPU run
    python -m experiments.translation --workdir /tmp/mt --smoke   # seconds
    python -m experiments.translation --workdir /tmp/mt --cpu --arms none p0.3  # a subset
"""

from __future__ import annotations

import dataclasses

# none: every dropout 0; p0.1 / p0.3: every dropout (embedding, residual, attention
# weights, FFN activation) at that rate; p0.3_no_attn: 0.3 except the attention weights;
# rdrop: p0.1 + R-Drop (Liang et al. 2021); curriculum: every rate ramped 0 -> 0.3
# (Morerio et al. 2017)
ARMS = ("none", "p0.1", "p0.3", "p0.3_no_attn", "rdrop", "curriculum")


@dataclasses.dataclass(frozen=True)
class Config:
    arms: tuple[str, ...] = ARMS  # arms to run, in order (see ARMS); a finished arm is skipped
    data_dir: str | None = None  # folder with Multi30k's {split}.{lang}.gz (None: shared data)
    source: str = "en"  # source language (a Multi30k language, or a TFDS feature name)
    target: str = "de"  # target language
    # a TFDS translation set instead of Multi30k (e.g. "ted_hrlr_translate/pt_to_en" with
    # --source pt --target en; Colab); None: the Multi30k files
    tfds_name: str | None = None
    tfds_splits: tuple[str, ...] = ("train", "validation", "test")  # TFDS train/val/test
    tfds_data_dir: str | None = None  # TFDS's data folder (None: $TFDS_DATA_DIR or default)
    tfds_download: bool = False  # let TFDS download and prepare the set (needs a network)
    max_train_pairs: int | None = None  # first N training pairs (None: all 29,000)
    max_val_pairs: int | None = None  # validation pairs used for per-epoch BLEU (None: 1,014)
    max_test_pairs: int | None = None  # test_2016_flickr pairs evaluated (None: all 1,000)
    vocab_size: int = 8000  # joint SentencePiece vocabulary (unigram), trained on train only
    max_length: int = 64  # longest source/target in subwords (longer training pairs dropped)
    seed: int = 0  # initialisation, dropout masks, batch order
    progress: bool = True  # tqdm bar per arm
    checkpoint_every: int | None = 500  # steps between checkpoints (a killed run resumes)
    stop_after_steps: int | None = None  # checkpoint and stop at this global step of an arm
    compilation_cache: bool = True  # JAX's persistent compilation cache in <workdir>/jax_cache
    # shard each training batch's rows over every local device (rows padded to a multiple
    # of the device count: a TPU's 8 cores); False: one device
    data_parallel: bool = True
    # --- model (Vaswani et al. 2017 base, pre-LN, shared + tied embeddings)
    features: int = 512  # d_model
    num_heads: int = 8  # attention heads
    ffn_features: int = 2048  # feed-forward inner width
    encoder_layers: int = 6  # encoder blocks
    decoder_layers: int = 6  # decoder blocks
    # --- training
    epochs: int = 40  # most epochs (early stopping on validation BLEU usually ends sooner)
    max_tokens: int = 8192  # padded positions per batch (rows * max(S, T))
    pad_to_multiple: int = 8  # lengths padded to a multiple of this (fewer compiled shapes)
    learning_rate: float = 1e-3  # peak of the inverse-sqrt schedule (Adam b2 = 0.98)
    warmup_steps: int = 2000  # linear warm-up, then 1/sqrt(step) decay (~11 epochs here)
    adam_b2: float = 0.98  # Adam's second-moment decay (Vaswani et al.)
    weight_decay: float = 0.0  # AdamW decoupled weight decay on kernels
    clip_norm: float | None = 1.0  # global gradient-norm clipping (None: off)
    label_smoothing: float = 0.1  # eps of the label-smoothed cross-entropy (all arms)
    patience: int = 5  # early stopping: epochs without a validation-BLEU improvement
    # --- arms
    low_rate: float = 0.1  # p0.1 and rdrop: every dropout's rate
    high_rate: float = 0.3  # p0.3, p0.3_no_attn, and curriculum's final rate
    rdrop_alpha: float = 5.0  # rdrop: weight of the symmetric KL (Liang et al.'s MT setting)
    curriculum_gamma: float | None = None  # curriculum: ramp speed per step (None: 10 / total)
    curriculum_quantum: float = 0.05  # curriculum: rate grid (one compiled step per value)
    # --- evaluation
    val_max_length: int = 64  # longest greedy/beam output in subwords
    eval_max_tokens: int = 8192  # source positions per decoding batch
    beam_width: int = 4  # final test evaluation: beam width
    length_penalty: float = 0.6  # GNMT alpha of the beam search (Wu et al. 2016)
    # --- MC-dropout quality estimation (best dropout arm, test translations)
    mc_samples: int = 30  # T stochastic passes per sentence
    mc_max_pairs: int | None = None  # test sentences scored (None: max_test_pairs)
    bootstrap: int = 1000  # bootstrap resamples of the Spearman intervals


def default() -> Config:
    """The issue's study at paper scale (base Transformer, 6 + 6 layers, d=512): for a GPU
    or TPU runtime::

        python -m experiments.translation --workdir /tmp/mt
    """
    return Config()


def cpu() -> Config:
    """The reduced run for a shared 2-core CPU, arm by arm: a low-resource Multi30k.

    The first 10,000 training pairs (the regime where dropout matters most: Sennrich &
    Zhang 2019), a 3 + 3 layer, d=128 Transformer (2.16M parameters with the 6,000-piece
    joint vocabulary), validation BLEU on the first 500 validation pairs, the full
    test_2016_flickr. On the idle 2-core machine a plain arm trains 3,000-3,300 tokens
    per CPU-second, about 6,000 per wall-second (313k real tokens an epoch: about 55 s,
    plus 4 s of greedy validation), so 16 epochs and the beam-search test take about
    15 minutes; R-Drop (two passes a step) about twice that. 7 compiled step shapes
    (~10 CPU-s each) are cached in ``<workdir>/jax_cache`` for later arms and reruns.
    Results and the exact commands: ``experiments/translation/results/README.md``::

        for arm in none p0.1 p0.3 p0.3_no_attn curriculum rdrop; do
          python -m experiments.translation --workdir /tmp/mt_cpu --cpu --arms $arm
        done
    """
    return dataclasses.replace(
        Config(),
        max_train_pairs=10_000,
        max_val_pairs=500,
        vocab_size=6000,
        features=128,
        num_heads=4,
        ffn_features=512,
        encoder_layers=3,
        decoder_layers=3,
        epochs=16,
        max_tokens=2048,
        pad_to_multiple=16,
        learning_rate=2e-3,
        warmup_steps=300,
        checkpoint_every=200,
        patience=4,
        curriculum_quantum=0.1,
        mc_samples=20,
        mc_max_pairs=500,
    )


def smoke() -> Config:
    """The whole path in seconds (the tests run this)::

        python -m experiments.translation --workdir /tmp/mt_smoke --smoke
    """
    return dataclasses.replace(
        Config(),
        arms=("none", "p0.3", "curriculum"),  # curriculum reuses their two compiled steps
        max_train_pairs=200,
        max_val_pairs=24,
        max_test_pairs=24,
        vocab_size=250,
        max_length=32,
        progress=False,
        compilation_cache=False,  # leave the process's JAX configuration alone (tests)
        data_parallel=False,  # one device even under the tests' eight host devices
        checkpoint_every=None,  # epoch ends (and stop_after_steps) only: orbax saves are slow
        features=16,
        num_heads=2,
        ffn_features=32,
        encoder_layers=1,
        decoder_layers=1,
        epochs=2,
        max_tokens=512,
        pad_to_multiple=32,  # one batch shape: one compiled step per program
        learning_rate=3e-3,
        warmup_steps=4,
        patience=2,
        val_max_length=12,
        eval_max_tokens=384,
        curriculum_quantum=0.3,  # two programs: rate 0 (the none arm's) and 0.3
        beam_width=2,
        mc_samples=2,
        bootstrap=20,
    )
