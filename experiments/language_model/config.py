"""Configuration of ``experiments.language_model`` (issue 13: language models where dropout wins).

    python -m experiments.language_model --workdir /tmp/lm           # the issue's study
    python -m experiments.language_model --workdir /tmp/lm --cpu     # the reduced CPU run
    python -m experiments.language_model --workdir /tmp/lm --smoke   # seconds
"""

from __future__ import annotations

import dataclasses

RNN_ARMS = ("none", "zaremba", "variational", "awd", "zoneout")
# "gru": a GRU with the dropout of the best (lowest val_loss) LSTM dropout arm run before it
TRANSFORMER_ARMS = ("transformer_none", "transformer_dropout")
ARMS = RNN_ARMS + ("gru",) + TRANSFORMER_ARMS


@dataclasses.dataclass(frozen=True)
class Config:
    arms: tuple[str, ...] = ARMS  # arms to run, in order (see ARMS); a finished arm is skipped
    data_dir: str | None = None  # folder with tinyshakespeare/input.txt (None: shared data)
    max_train_chars: int | None = None  # use the first N training characters (None: all 1,003,854)
    train_chunks: int = 1  # take max_train_chars as this many evenly spaced pieces (1: a prefix)
    max_valid_chars: int | None = None  # validation characters evaluated (None: all 55,770)
    max_test_chars: int | None = None  # test characters evaluated (None: all 55,770)
    seed: int = 0  # initialisation, dropout masks and epoch offsets
    progress: bool = True  # tqdm bar per arm
    checkpoint_every: int | None = 500  # steps between checkpoints (a killed run resumes)
    patience: int = 3  # early stopping: epochs without a validation improvement
    # --- recurrent arms (all LSTM unless the arm is "gru")
    rnn_layers: int = 2  # recurrent layers
    rnn_hidden: int = 1024  # units per layer (= embedding size, tied decoder)
    rnn_epochs: int = 30  # most epochs (early stopping usually ends sooner)
    rnn_batch_size: int = 64  # streams per batch (lm_batches' contiguous layout)
    rnn_seq_len: int = 128  # truncated-BPTT length (state carried across segments)
    rnn_learning_rate: float = 2e-3  # Adam peak rate, cosine decay over rnn_epochs
    rnn_clip_norm: float = 1.0  # global gradient-norm clipping
    rnn_eval_batch_size: int = 16  # validation/test streams (state carried across segments)
    zaremba_rate: float = 0.5  # zaremba: fresh-per-step dropout on input, between layers, output
    variational_input_rate: float = 0.35  # variational, awd: locked dropout on the embedded input
    variational_hidden_rate: float = 0.35  # variational, awd: locked dropout between layers
    variational_output_rate: float = 0.35  # variational, awd: locked dropout before the decoder
    variational_recurrent_rate: float = 0.2  # variational: one mask per sequence on h_{t-1}
    awd_embedding_rate: float = 0.1  # awd: embedding (word-type) dropout on whole rows
    awd_weight_drop: float = 0.3  # awd: DropConnect on W_hh (no recurrent mask, as AWD-LSTM)
    zoneout_rate: float = 0.1  # zoneout: probability a state unit keeps its previous value
    # --- Transformer arms (nanoGPT's shakespeare_char shape by default)
    tf_layers: int = 6  # Transformer blocks
    tf_features: int = 384  # model width
    tf_heads: int = 6  # attention heads
    tf_block_size: int = 256  # context length (training windows of this length)
    tf_dropout: float = 0.2  # transformer_dropout: embedding, attention and residual rates
    tf_epochs: int = 30  # most epochs (early stopping usually ends sooner)
    tf_batch_size: int = 64  # windows per batch
    tf_learning_rate: float = 1e-3  # AdamW peak rate (warm-up, cosine decay)
    tf_warmup_steps: int = 100  # linear warm-up steps
    tf_weight_decay: float = 0.1  # AdamW decoupled weight decay on kernels
    tf_clip_norm: float = 1.0  # global gradient-norm clipping
    # --- MC dropout evaluation and samples
    mc_samples: int = 100  # T: dropout masks averaged in the predictive distribution
    mc_max_chars: int | None = None  # validation characters used for MC (None: max_valid_chars)
    sample_chars: int = 500  # characters generated per arm (samples/<arm>.txt)
    sample_temperature: float = 0.8  # sampling temperature
    sample_prompt: str = "ROMEO:\n"  # prompt of the samples


def default() -> Config:
    """The issue's study: 2x1024 LSTM arms, a GRU, nanoGPT's 6x384 Transformer, full text.

    About 4 hours on a GPU-less 2-core machine is not enough for it (see results/README);
    it is the configuration for a GPU/TPU runtime::

        python -m experiments.language_model --workdir /tmp/lm
    """
    return Config()


def cpu() -> Config:
    """The reduced run in ``results/``: small models that over-fit 40k training characters.

    A 2x256 LSTM (1.07M parameters) and a 2x128 Transformer (0.4M) on 40,000 training
    characters taken as 40 evenly spaced pieces of 1,000 (a 40k *prefix* is one play,
    *Coriolanus*, and validation is another: see results/README), so that on a shared
    2-core CPU, within minutes per arm, the model without dropout over-fits (validation
    loss turns up while the training loss keeps falling): the regime where dropout is
    supposed to win. Validation and test: the first 10,000 characters of TFDS's splits::

        python -m experiments.language_model --workdir /tmp/lm_cpu --cpu
    """
    return dataclasses.replace(
        Config(),
        max_train_chars=40_000,
        train_chunks=40,
        max_valid_chars=10_000,
        max_test_chars=10_000,
        checkpoint_every=100,
        patience=4,
        rnn_hidden=256,
        rnn_epochs=40,  # 24 cut the variational arm off while it still improved
        rnn_batch_size=32,
        rnn_seq_len=50,
        rnn_learning_rate=2e-3,
        zaremba_rate=0.4,
        variational_input_rate=0.4,
        variational_hidden_rate=0.4,
        variational_output_rate=0.4,
        variational_recurrent_rate=0.25,
        awd_weight_drop=0.4,
        zoneout_rate=0.15,
        tf_layers=2,
        tf_features=128,
        tf_heads=4,
        tf_block_size=64,
        tf_epochs=90,  # 30 left the dropout model under-fitted (see results/README)
        tf_batch_size=16,
        tf_learning_rate=3e-3,
        tf_warmup_steps=50,
        mc_samples=100,
        mc_max_chars=5_000,
        sample_chars=300,
    )


def smoke() -> Config:
    """The whole path in seconds (the tests run this)::

        python -m experiments.language_model --workdir /tmp/lm_smoke --smoke
    """
    return dataclasses.replace(
        Config(),
        arms=("none", "variational", "gru", "transformer_dropout"),
        max_train_chars=4_000,
        max_valid_chars=1_000,
        max_test_chars=1_000,
        checkpoint_every=20,
        progress=False,
        patience=2,
        rnn_hidden=16,
        rnn_epochs=2,
        rnn_batch_size=8,
        rnn_seq_len=16,
        rnn_eval_batch_size=8,
        tf_layers=1,
        tf_features=16,
        tf_heads=2,
        tf_block_size=16,
        tf_epochs=2,
        tf_batch_size=8,
        tf_warmup_steps=2,
        mc_samples=2,
        sample_chars=20,
    )
