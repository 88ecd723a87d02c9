"""Dropout vs L1, L2, max-norm, early stopping and augmentation (Srivastava et al. 2014,
Table 9) on Fashion-MNIST: ``python -m experiments.regularizers``.

``config.py`` holds the settings (``default()``, ``cpu()``, ``smoke()``), ``train.py`` the
experiment (:func:`train_and_evaluate`), ``results/`` the committed results.
"""
