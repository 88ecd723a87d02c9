"""Configuration of ``experiments.speech`` (issue 14: dropout for acoustic models on FSDD).

    python -m experiments.speech --workdir /tmp/speech --smoke
"""

from __future__ import annotations

import dataclasses

ISSUE_ARMS = ("none", "standard", "spatial", "rnn_none", "recurrent", "specaugment",
              "specaugment_dropout")  # the issue's arms: what default() runs
ARMS = ISSUE_ARMS + ("vtlp", "vtlp_dropout")  # + vocal tract length perturbation (a follow-up)
CTC_ARMS = ("ctc_none", "ctc_dropout")
PARTS = ("isolated", "connected", "mc")


@dataclasses.dataclass(frozen=True)
class Config:
    parts: tuple[str, ...] = PARTS  # which parts to run (see PARTS), in order
    data_dir: str | None = None  # folder of FSDD's {digit}_{speaker}_{index}.wav (None: searched)
    seed: int = 0  # seed of initialisation, batches, dropout and utterance synthesis
    progress: bool = True  # a line per evaluation chunk
    clips_per_digit: int = 50  # repetitions used per speaker and digit (FSDD has 50; index < n)
    # --- features: log-mel in JAX, computed once per run
    clip_samples: int = 6144  # isolated clips zero-padded / centre-cut to this (0.77 s at 8 kHz)
    n_fft: int = 256  # FFT size (32 ms at 8 kHz)
    hop_length: int = 256  # frame step (32 ms)
    n_mels: int = 24  # mel bands (Slaney, librosa's default)
    # --- isolated digits
    arms: tuple[str, ...] = ISSUE_ARMS  # arms to run (see ARMS)
    official: bool = True  # train each arm on the official split (index 0-4 test) too
    loso: bool = True  # leave-one-speaker-out, 6 folds in one vmapped program per arm
    epochs: int = 30  # passes over the training set
    batch_size: int = 64  # examples per Adam step
    learning_rate: float = 2e-3  # Adam learning rate (cosine decay to 0)
    num_evals: int = 5  # test evaluations (learning-curve points, progress lines) per run
    cnn_fold_batch: int = 1  # CNN folds trained per vmapped program on an accelerator (a CPU
    #   calls one compiled step per fold and step instead: train._loop_for)
    rnn_fold_batch: int = 6  # BiGRU folds trained per vmapped program
    cnn_channels: tuple[int, ...] = (8, 16)  # CNN conv blocks (3x3 conv, ReLU, 2x2 max pool)
    cnn_hidden: int = 64  # CNN dense width
    dense_rate: float = 0.5  # standard/spatial/specaugment_dropout: dropout on the dense layer
    conv_standard_rate: float = 0.1  # standard: elementwise dropout after each conv block
    conv_spatial_rate: float = 0.2  # spatial, specaugment_dropout: spatial conv dropout
    rnn_hidden: int = 48  # BiGRU units per direction (rnn_none, recurrent)
    rnn_subsample: int = 2  # BiGRU reads this many stacked frames per step
    rnn_input_rate: float = 0.2  # recurrent: variational dropout on the BiGRU's inputs
    rnn_recurrent_rate: float = 0.25  # recurrent: variational dropout on h_{t-1}
    rnn_output_rate: float = 0.25  # recurrent: variational dropout on the BiGRU's outputs
    time_masks: int = 2  # SpecAugment arms: time masks per example
    max_time_width: int = 4  # SpecAugment arms: widest time mask (frames, 32 ms each)
    freq_masks: int = 2  # SpecAugment arms: frequency masks per example
    max_freq_width: int = 4  # SpecAugment arms: widest frequency mask (mel bands)
    vtlp_max_warp: float = 0.1  # vtlp arms: warp factors ~ U[1 - w, 1 + w] (Jaitly & Hinton: 0.1)
    # --- connected digits (CTC)
    ctc_arms: tuple[str, ...] = CTC_ARMS  # arms to run (see CTC_ARMS)
    ctc_test_speakers: tuple[str, ...] = ("nicolas", "theo")  # held-out speakers
    ctc_train_utterances: int = 1500  # synthesized training utterances (training speakers)
    ctc_test_utterances: int = 300  # synthesized test utterances (held-out speakers)
    ctc_min_digits: int = 3  # fewest digits per utterance
    ctc_max_digits: int = 7  # most digits per utterance
    ctc_seconds: float = 4.5  # utterance window (seconds); longer draws are redrawn
    ctc_min_pause: float = 0.05  # shortest pause before each digit (seconds)
    ctc_max_pause: float = 0.3  # longest pause before each digit (seconds)
    ctc_min_noise: float = 0.002  # smallest white-noise standard deviation (full scale 1)
    ctc_max_noise: float = 0.02  # largest white-noise standard deviation
    ctc_hidden: int = 48  # BiGRU units per direction
    ctc_subsample: int = 2  # stacked frames per BiGRU step (64 ms)
    ctc_epochs: int = 30  # passes over the training utterances
    ctc_batch_size: int = 32  # utterances per Adam step
    ctc_learning_rate: float = 3e-3  # Adam learning rate (cosine decay), gradients clipped at 1
    ctc_seeds: int = 2  # models per arm (vmapped); error rates are pooled over seeds
    ctc_input_rate: float = 0.1  # ctc_dropout: variational input dropout
    ctc_recurrent_rate: float = 0.25  # ctc_dropout: variational recurrent dropout
    ctc_output_rate: float = 0.25  # ctc_dropout: variational output dropout
    # --- MC dropout on the leave-one-speaker-out models
    mc_arm: str = "specaugment_dropout"  # whose LOSO models are sampled (a dropout arm)
    mc_samples: int = 20  # stochastic forward passes per utterance


def default() -> Config:
    """The issue's run: every part and arm, 30 epochs (``--workdir`` only)."""
    return Config()


def cpu() -> Config:
    """A third of the training, for a heavily loaded machine (10 epochs, one CTC seed).

    The committed results are ``default()``'s: 13 minutes on the idle 2-core CPU.
    """
    return dataclasses.replace(Config(), epochs=10, ctc_epochs=12, ctc_train_utterances=1000,
                               ctc_seeds=1)


def smoke() -> Config:
    """The whole path in seconds (the tests run this)."""
    return dataclasses.replace(
        Config(), clips_per_digit=7, arms=("spatial", "recurrent", "vtlp_dropout"),
        ctc_arms=("ctc_dropout",),
        epochs=1, num_evals=1, cnn_channels=(4,), cnn_hidden=8, rnn_hidden=4, clip_samples=4096,
        ctc_train_utterances=8, ctc_test_utterances=4, ctc_hidden=4, ctc_epochs=1,
        ctc_batch_size=4, ctc_seeds=1, ctc_seconds=2.5, ctc_max_digits=3, mc_samples=3,
        mc_arm="spatial", batch_size=256, progress=False,
    )
