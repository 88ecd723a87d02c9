"""Configuration of ``experiments.test_time_rule`` (Srivastava et al. 2014, Figure 11).

    python -m experiments.test_time_rule --workdir /tmp/ttr --smoke
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "default"  # label written into the results
    models: tuple[str, ...] = ("mlp", "cnn")  # which dropout networks to train and test
    num_train: int | None = None  # training examples (None: all 50,000 left after validation)
    num_val: int = 10_000  # validation examples carved from the training set (unused here)
    max_test: int | None = None  # evaluate on a prefix of the test set (None: all 10,000)
    batch_size: int = 100  # examples per SGD step
    learning_rate: float = 0.05  # SGD learning rate (peak)
    schedule: str = "cosine"  # learning-rate schedule: "cosine" (to 0 at the end) or "constant"
    mlp_hidden: tuple[int, ...] = (512, 512)  # hidden layers of the MLP
    mlp_epochs: int = 40  # epochs of the MLP
    mlp_in_rate: float = 0.2  # MLP input drop rate
    mlp_hid_rate: float = 0.5  # MLP hidden drop rate
    max_norm: float = 3.0  # max-norm radius of the MLP (dropout + max-norm, Table 9's best)
    cnn_channels: tuple[int, ...] = (32, 64)  # channels of the two 5x5 convolutions
    cnn_hidden: int = 256  # units of the CNN's dense hidden layer
    cnn_epochs: int = 15  # epochs of the CNN
    cnn_conv_rate: float = 0.1  # elementwise dropout after each convolution
    cnn_hid_rate: float = 0.5  # dropout after the dense hidden layer
    sample_counts: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 30, 50, 100, 150, 200)  # T values
    mc_chunk: int = 2_000  # test examples per MC pass (bounds memory)
    seed: int = 0  # parameters, data order, masks and MC samples derive from it
    eval_examples: int = 2_000  # train / test examples of the per-epoch curves
    data_dir: str | None = None  # folder with the Fashion-MNIST IDX files (None: searched)
    progress: bool = True  # one line per epoch


def default() -> Config:
    """The issue's configuration: MLP 784-512-512-10 and LeNet-style CNN 32-64-256."""
    return Config()


def cpu() -> Config:
    """What this session ran: MLP 784-256-256-10 (30 epochs of 20,000 examples), CNN
    8-16-64 (3 epochs), MC on the first 2,000 test images."""
    return dataclasses.replace(Config(), name="cpu", num_train=20_000, max_test=2_000,
                               mlp_hidden=(256, 256), mlp_epochs=30, cnn_channels=(8, 16),
                               cnn_hidden=64, cnn_epochs=3)


def smoke() -> Config:
    """Seconds: tiny networks, 500 examples, 1 epoch, T <= 10 on 200 test images."""
    return dataclasses.replace(
        Config(), name="smoke", num_train=500, num_val=100, max_test=200, mlp_hidden=(16,),
        mlp_epochs=1, cnn_channels=(4, 4), cnn_hidden=16, cnn_epochs=1,
        sample_counts=(1, 2, 5, 10), mc_chunk=100, eval_examples=200, progress=False)
