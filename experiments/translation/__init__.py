"""Machine translation with dropout (issue 12): a Transformer on Multi30k En->De.

Arms: no dropout; dropout 0.1 and 0.3 in every place (embedding + positions, residual,
attention weights, FFN activation); 0.3 without attention dropout; R-Drop (Liang et al.
2021) on top of 0.1; curriculum dropout ramped to 0.3 (Morerio et al. 2017). Validation
BLEU per epoch with early stopping, beam search on test_2016_flickr (``bleu``,
``bleu_lc_tok``, ``chrf``), then MC-dropout quality estimation (Fomicheva et al. 2020)
for the best dropout arm.

Files: ``config.py`` (``default()`` the paper-scale study, ``cpu()`` the reduced CPU run,
``smoke()``), ``train.py`` (the experiment), ``metrics.py`` (sacreBLEU scores),
``quality.py`` (MC-dropout quality estimation).
"""
