"""Language models where dropout wins (issue 13): Tiny Shakespeare at the character level.

Arms: a 2-layer LSTM without dropout, with Zaremba's dropout, with variational (Gal)
dropout, AWD (locked dropout + embedding dropout + weight drop), zoneout; a GRU with the
best LSTM arm's dropout; a decoder-only Transformer (nanoGPT's shape) with and without
dropout. Then MC-dropout evaluation of the best RNN and Transformer arms.

Files: ``config.py`` (``default()`` the issue's study, ``cpu()`` the committed reduced run,
``smoke()``), ``train.py`` (the experiment), ``results/`` (the ``cpu()`` run).
"""
