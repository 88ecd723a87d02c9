"""Configuration of the MC-dropout uncertainty experiment (``experiments.mc_dropout``).

Each field is also a flag of ``python -m experiments.mc_dropout`` (``--num_epochs 3``).
Every model has its own dropout fields: a field is read only by the model it names.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "mnist1d"  # mnist1d (generated in-process), fashion_mnist, cifar10, ...
    data_dir: str | None = None  # where local files are looked for first (see jdrop.data)
    model: str = "cnn"  # cnn | mlp | gru (MNIST-1D); lenet_all | lenet_ip | mlp | resnet20 (images)
    width: int = 64  # cnn: channels of each of its three convolutions
    conv_rate: float = 0.05  # cnn: spatial dropout (whole channels) after each convolution
    head_rate: float = 0.1  # cnn, lenet_*, resnet20: dropout before the classifier
    mlp_width: int = 256  # mlp: units of each of its two hidden layers
    mlp_input_rate: float = 0.05  # mlp: dropout on the inputs
    mlp_hidden_rate: float = 0.1  # mlp: dropout after each hidden layer
    gru_hidden: int = 16  # gru: hidden units
    gru_recurrent_rate: float = 0.05  # gru: variational dropout on the recurrent state
    gru_readout_rate: float = 0.1  # gru: dropout on the readout features
    optimizer: str = "adam"  # a jdrop.train.make_optimizer name
    learning_rate: float = 3e-3  # peak learning rate
    schedule: str = "cosine"  # a jdrop.train.make_schedule name: cosine, constant, ...
    weight_decay: float = 0.0  # coupled L2 on kernels (dropout is the regulariser here)
    batch_size: int = 100  # global batch, split over every device
    num_epochs: int = 150  # epochs of training (40 steps each on MNIST-1D)
    num_samples: int = 100  # the largest number T of MC-dropout samples
    sample_counts: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 30, 50, 100)  # T of the curves
    chunk_size: int = 50  # MC samples evaluated at once (bounds memory)
    num_bins: int = 15  # calibration bins (equal width)
    shifts: tuple[str, ...] = ("noise", "translation", "reversal")  # see jdrop.data.SHIFTS
    max_test_examples: int | None = None  # evaluate on a prefix of the test set
    checkpoint_every: int | None = 200  # steps between orbax checkpoints (and at the end)
    seed: int = 0  # parameters, data order, dropout masks and shifts derive from it
    progress: bool = True  # tqdm progress bar
    fresh: bool = False  # discard the workdir's checkpoints (another config's) and start over


def default() -> Config:
    """MNIST-1D, 64-channel CNN, spatial dropout 0.05 after each conv, 0.1 before the head.

    Light dropout and a long run (150 epochs, 6,000 Adam steps) leave the deterministic
    network overconfident on test signals, the regime in which MC averaging helps; heavier
    dropout (0.3-0.5) made both inferences underconfident and MC worse (see the README)::

        python -m experiments.mc_dropout --workdir /tmp/mc_dropout
    """
    return Config()


def smoke() -> Config:
    """The whole path in seconds: tiny models, two epochs, T <= 10, 200 test signals::

        python -m experiments.mc_dropout --workdir /tmp/mc_smoke --smoke
    """
    return dataclasses.replace(
        Config(), width=8, mlp_width=32, gru_hidden=6, num_epochs=2, num_samples=10,
        sample_counts=(1, 2, 5, 10), chunk_size=5, max_test_examples=200,
        checkpoint_every=None, progress=False,
    )
