"""MC-dropout uncertainty vs deterministic inference (``python -m experiments.mc_dropout``).

``config.py`` holds the settings (``default()``, ``smoke()``), ``train.py`` the experiment
(:func:`train_and_evaluate`), ``results/`` the committed results of the default run.
"""
