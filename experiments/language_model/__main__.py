"""Language models where dropout wins: Tiny Shakespeare, LSTM/GRU dropout arms, a Transformer.

    python -m experiments.language_model --workdir /tmp/lm           # the issue's study
    python -m experiments.language_model --workdir /tmp/lm --cpu     # the run in results/
    python -m experiments.language_model --workdir /tmp/lm --smoke   # seconds

``--cpu`` starts from ``config.cpu()`` (the reduced configuration whose results are
committed); every field of ``experiments/language_model/config.py`` is a flag.
"""

from experiments import flags
from experiments.language_model import config, train


def main(argv=None) -> dict:
    cfg, workdir = flags.parse(config, argv, description=__doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()
