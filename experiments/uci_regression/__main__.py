"""Gal & Ghahramani (2016), Table 1: MC-dropout regression on the UCI data sets.

    python -m experiments.uci_regression                       # all nine data sets
    python -m experiments.uci_regression --datasets yacht --splits 2 --num_samples 1000
    python -m experiments.uci_regression --smoke --workdir /tmp/uci_smoke

Every field of ``experiments/uci_regression/config.py`` is a flag. Results go to
``--workdir`` (alias ``--output_dir``; default: the committed ``results/`` folder).
"""

from pathlib import Path

from experiments import flags
from experiments.uci_regression import config, train

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> list[dict]:
    cfg, workdir = flags.parse(config, argv, description=__doc__, check=train.check_config,
                               workdir_default=RESULTS, workdir_aliases=("--output_dir",))
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()
