"""Multi30k En->De with a Transformer: dropout arms, R-Drop, curriculum dropout, MC-dropout QE.

    python -m experiments.translation --workdir /tmp/mt           # the issue's study (GPU/TPU)
    python -m experiments.translation --workdir /tmp/mt --cpu     # the reduced CPU run
    python -m experiments.translation --workdir /tmp/mt --smoke   # seconds
    python -m experiments.translation --workdir /tmp/mt --cpu --arms none p0.1   # some arms

``--cpu`` starts from ``config.cpu()``; every field of ``experiments/translation/config.py``
is a flag. A finished arm (``<workdir>/arms/<arm>.json``) is skipped; a stopped arm
resumes from its last checkpoint.
"""

from experiments import flags
from experiments.translation import config, train


def main(argv=None) -> dict:
    cfg, workdir = flags.parse(config, argv, description=__doc__, check=train.check_config)
    return train.train_and_evaluate(cfg, workdir)


if __name__ == "__main__":
    main()
