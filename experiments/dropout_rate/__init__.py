"""Choosing the drop rate (Srivastava et al. 2014, Figure 9) on Fashion-MNIST:
``python -m experiments.dropout_rate``.

``config.py`` holds the settings (``default()``, ``cpu()``, ``smoke()``), ``train.py`` the
experiment (:func:`train_and_evaluate`), ``results/`` the committed results.
"""
