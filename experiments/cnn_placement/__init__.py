"""Where dropout goes in a CNN (LeNet-style and ResNet-20) on Fashion-MNIST:
``python -m experiments.cnn_placement``.

``config.py`` holds the settings (``default()``, ``cpu()``, ``smoke()``), ``train.py`` the
experiment (:func:`train_and_evaluate`), ``results/`` the committed results.
"""
