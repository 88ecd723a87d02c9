"""Dropout placement in CNNs on Fashion-MNIST: none, dense only, elementwise after
convolutions, spatial dropout, DropBlock, stochastic depth.

    python -m experiments.cnn_placement --workdir /tmp/cnn          # issue's run (~75 min)
    python -m experiments.cnn_placement --workdir /tmp/cnn --cpu    # small early run
    python -m experiments.cnn_placement --workdir /tmp/cnn \
        --resnet_widths 16 32 64 --num_epochs 30                     # accelerator run
    python -m experiments.cnn_placement --workdir /tmp/cnn --smoke  # seconds

Every field of ``experiments/cnn_placement/config.py`` is a flag (``--num_epochs 3``).
"""

from experiments._images import parse_flags
from experiments.cnn_placement import config, train


def main(argv=None) -> dict:
    cfg, workdir = parse_flags(config, argv, __doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()
