"""MC-dropout regression on the UCI data sets (``python -m experiments.uci_regression``).

``config.py`` holds the settings (``default()``, ``smoke()``), ``train.py`` the experiment
(:func:`train_and_evaluate`), ``results/`` the committed table and per-data-set runs.
"""
