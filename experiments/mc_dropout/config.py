"""Configuration of the MC-dropout uncertainty experiment (``experiments.mc_dropout``).

The default trains the MNIST-1D CNN below; ``smoke()`` is the same path at toy size:

    python -m experiments.mc_dropout --workdir /tmp/mc --smoke
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "mnist1d"  # mnist1d (generated in-process), fashion_mnist, cifar10, ...
    data_dir: str | None = None  # where local files are looked for first (see jdrop.data)
    model: str = "cnn"  # cnn | mlp | gru (MNIST-1D); lenet_all | lenet_ip | resnet20 (images)
    width: int = 64  # channels of each MNIST-1D convolution / units of the MLP
    conv_rate: float = 0.05  # dropout after each convolution (spatial: whole channels)
    head_rate: float = 0.1  # dropout before the classifier
    optimizer: str = "adam"  # a jdrop.train.make_optimizer name
    learning_rate: float = 3e-3  # peak learning rate
    schedule: str = "cosine"  # a jdrop.train.make_schedule name: cosine, constant, ...
    weight_decay: float = 0.0  # coupled L2 on kernels (dropout is the regulariser here)
    batch_size: int = 100  # global batch, split over every device
    num_epochs: int = 150  # epochs of training (40 steps each)
    num_samples: int = 100  # the largest number T of MC-dropout samples
    sample_counts: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 30, 50, 100)  # T of the curves
    chunk_size: int = 50  # MC samples evaluated at once (bounds memory)
    num_bins: int = 15  # calibration bins (equal width)
    shifts: tuple[str, ...] = ("noise", "translation", "reversal")  # see experiments.shifts
    max_test_examples: int | None = None  # evaluate on a prefix of the test set
    checkpoint_every: int | None = 200  # steps between orbax checkpoints (and at the end)
    seed: int = 0  # parameters, data order, dropout masks and shifts derive from it
    progress: bool = True  # tqdm progress bar


def default() -> Config:
    """MNIST-1D, 64-channel CNN, spatial dropout 0.05 after each conv, 0.1 before the head.

    Light dropout and a long run (150 epochs, 6,000 Adam steps) leave the deterministic
    network overconfident on test signals, the regime in which MC averaging helps; heavier
    dropout (0.3-0.5) made both inferences underconfident and MC worse (see the README).
    """
    return Config()


def smoke() -> Config:
    """The whole path in seconds: tiny model, two epochs, T <= 10, 200 test signals."""
    return dataclasses.replace(
        Config(), width=8, num_epochs=2, num_samples=10, sample_counts=(1, 2, 5, 10),
        chunk_size=5, max_test_examples=200, checkpoint_every=None, progress=False,
    )
