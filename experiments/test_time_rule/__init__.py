"""MC averaging vs the weight-scaling rule at test time (Srivastava et al. 2014, Figure 11)
on Fashion-MNIST: ``python -m experiments.test_time_rule``.

``config.py`` holds the settings (``default()``, ``cpu()``, ``smoke()``), ``train.py`` the
experiment (:func:`train_and_evaluate`), ``results/`` the committed results.
"""
