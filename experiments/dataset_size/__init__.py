"""Dropout's gain vs training-set size (Srivastava et al. 2014, Figure 10) on Fashion-MNIST:
``python -m experiments.dataset_size``.

``config.py`` holds the settings (``default()``, ``cpu()``, ``smoke()``), ``train.py`` the
experiment (:func:`train_and_evaluate`), ``results/`` the committed results.
"""
