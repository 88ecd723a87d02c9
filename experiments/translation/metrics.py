"""Translation quality: BLEU and chrF with sacrebleu, the standard scorer.

Three corpus scores, each on a 0-100 scale, computed from detokenised hypotheses and one
reference per sentence (the raw, untokenised reference text, e.g. Multi30k's
``test_2016_flickr.de``):

* ``bleu``: SacreBLEU's default BLEU (Post 2018): case-sensitive, sacrebleu's ``13a``
  tokenisation (that of WMT's ``mteval-v13a.pl``), exponential smoothing, one
  reference. The number to compare across papers that report SacreBLEU.
* ``bleu_lc_tok``: the *lowercased, tokenised* BLEU that the Multi30k literature reports.
  Those papers lowercase, normalise punctuation and tokenise hypotheses and references
  with the Moses scripts, then run ``multi-bleu.perl``. Here: sacrebleu's BLEU with
  ``lowercase=True`` and its ``13a`` tokeniser, applied to the detokenised text. BLEU's
  formula is the same (``multi-bleu.perl`` and sacrebleu agree on the n-gram counts,
  brevity penalty and geometric mean; smoothing only matters when an n-gram order has
  no match in the whole corpus); only the tokeniser differs: ``13a`` splits every
  punctuation mark and every hyphen not between digits (``T-Shirt`` -> ``T - Shirt``),
  Moses' ``tokenizer.perl`` (without ``-a``) keeps word-internal hyphens and escapes
  ``& < > " '`` as entities. So ``bleu_lc_tok`` is close to, not identical with, the
  papers' numbers. Measured once on Multi30k's ``test_2016_flickr`` German references
  against copies with 10 / 30 / 50 % of the words dropped or replaced, ``bleu_lc_tok``
  gave 77.36 / 45.28 / 19.64 and the Moses pipeline (sacremoses 0.2.0: lowercase,
  normalise punctuation, tokenise, escape; then BLEU on those tokens) 77.44 / 45.20 /
  19.39: within 0.25 BLEU.
* ``chrf``: chrF (Popović 2015) as sacrebleu computes it by default: character n-grams
  up to 6, beta = 2, no word n-grams (chrF, not chrF++), whitespace ignored.

:func:`sentence_chrf` scores each sentence on its own (for quality estimation, see
:mod:`experiments.translation.quality`).

References:
  Papineni, K., Roukos, S., Ward, T. and Zhu, W.-J. "BLEU: a Method for Automatic
  Evaluation of Machine Translation". ACL 2002.
  Post, M. "A Call for Clarity in Reporting BLEU Scores". WMT 2018.
  Popović, M. "chrF: character n-gram F-score for automatic MT evaluation". WMT 2015.
  Elliott, D., Frank, S., Barrault, L., Bougares, F. and Specia, L. "Findings of the
  Second Shared Task on Multimodal Machine Translation and Multilingual Image
  Description". WMT 2017 (the Multi30k evaluation: lowercased, tokenised BLEU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "bleu",
    "bleu_lc_tok",
    "chrf",
    "metric_signatures",
    "sentence_chrf",
    "translation_scores",
]


def _check_texts(hypotheses, references) -> tuple[list[str], list[str]]:
    """Both as lists of str of one length ``>= 1``; errors name the argument."""
    out = []
    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(texts, str):
            raise TypeError(f"{name} must be a sequence of sentences, got a single str; "
                            "wrap it in a list")
        try:
            texts = list(texts)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of str, got {name}={texts!r}") from None
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{name} must hold str, got {type(text).__name__} at index {i}")
        out.append(texts)
    hypotheses, references = out
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references must have the same length (one reference per "
            f"sentence), got {len(hypotheses)} hypotheses and {len(references)} references"
        )
    if not hypotheses:
        raise ValueError("hypotheses and references must hold at least one sentence, got none")
    return hypotheses, references


def _bleu_metric(lowercase: bool):
    from sacrebleu.metrics import BLEU

    return BLEU(lowercase=lowercase, tokenize="13a")


def _chrf_metric():
    from sacrebleu.metrics import CHRF

    return CHRF()


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU as SacreBLEU reports it by default (case-sensitive, ``13a`` tokens).

    ``BLEU = 100 * BP * exp(sum_{n=1..4} log(p_n) / 4)``, where ``p_n`` is the corpus
    n-gram precision (clipped matches over hypothesis n-grams, summed over sentences) and
    ``BP = min(1, exp(1 - r / c))`` the brevity penalty for hypothesis length ``c`` and
    reference length ``r`` (in tokens).

    Args:
      hypotheses: detokenised translations, one per sentence.
      references: the reference translations (raw text), one per sentence.

    Returns:
      BLEU in ``[0, 100]``.

    Raises:
      TypeError: an argument is a single ``str`` or holds a non-``str``.
      ValueError: the two differ in length, or are empty.

    Examples:
      >>> bleu(["the cat sat on the red mat"], ["the cat sat on the mat"])  # hand-checked
      64.3...
      >>> round(bleu(["The cat sat on the mat."], ["The cat sat on the mat."]), 6)
      100.0
      >>> bleu(["The cat."], ["The cat."])  # 3 tokens: no 4-gram to match
      0.0

    References:
      Post, M. "A Call for Clarity in Reporting BLEU Scores". WMT 2018.
    """
    hypotheses, references = _check_texts(hypotheses, references)
    return float(_bleu_metric(False).corpus_score(hypotheses, [references]).score)


def bleu_lc_tok(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Lowercased tokenised corpus BLEU, the score the Multi30k papers report.

    sacrebleu's BLEU with ``lowercase=True`` and the ``13a`` tokeniser on detokenised
    text (see the module docstring for how this compares with ``multi-bleu.perl`` on
    Moses-tokenised text).

    Args:
      hypotheses: detokenised translations.
      references: raw reference translations.

    Returns:
      BLEU in ``[0, 100]``.

    Raises:
      TypeError, ValueError: as :func:`bleu`.

    Examples:
      >>> hyp, ref = ["A dog runs in the snow."], ["a dog runs in the snow ."]
      >>> round(bleu_lc_tok(hyp, ref), 6), round(bleu(hyp, ref), 2)
      (100.0, 80.91)
    """
    hypotheses, references = _check_texts(hypotheses, references)
    return float(_bleu_metric(True).corpus_score(hypotheses, [references]).score)


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (character 6-grams, beta = 2), sacrebleu's default ``CHRF()``.

    The corpus score pools the character n-gram statistics of every sentence (it is not
    the mean of the sentence scores).

    Args:
      hypotheses: detokenised translations.
      references: raw reference translations.

    Returns:
      chrF in ``[0, 100]``.

    Raises:
      TypeError, ValueError: as :func:`bleu`.

    Examples:
      >>> chrf(["Ein Hund läuft."], ["Ein Hund läuft."]), chrf(["xyz"], ["abc"])
      (100.0, 0.0)

    References:
      Popović, M. "chrF: character n-gram F-score for automatic MT evaluation". WMT 2015.
    """
    hypotheses, references = _check_texts(hypotheses, references)
    return float(_chrf_metric().corpus_score(hypotheses, [references]).score)


def sentence_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """chrF of each sentence against its reference (sacrebleu's ``sentence_score``).

    Args:
      hypotheses: detokenised translations.
      references: raw reference translations.

    Returns:
      float64 array of shape ``(n,)``, each in ``[0, 100]``.

    Raises:
      TypeError, ValueError: as :func:`bleu`.

    Examples:
      >>> sentence_chrf(["Ein Hund.", "abc"], ["Ein Hund.", "xyz"]).tolist()
      [100.0, 0.0]
    """
    hypotheses, references = _check_texts(hypotheses, references)
    metric = _chrf_metric()
    return np.array(
        [metric.sentence_score(h, [r]).score for h, r in zip(hypotheses, references, strict=True)],
        np.float64,
    )


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """The three corpus scores of the translation experiment's result files.

    Args:
      hypotheses: detokenised translations.
      references: raw reference translations.

    Returns:
      ``{"bleu": ..., "bleu_lc_tok": ..., "chrf": ...}`` (floats, 0-100), as
      :func:`bleu`, :func:`bleu_lc_tok` and :func:`chrf` compute them.

    Raises:
      TypeError, ValueError: as :func:`bleu`.

    Examples:
      >>> scores = translation_scores(["Zwei Hunde spielen im Schnee."],
      ...                             ["Zwei Hunde spielen im Schnee."])
      >>> {name: round(value, 6) for name, value in scores.items()}
      {'bleu': 100.0, 'bleu_lc_tok': 100.0, 'chrf': 100.0}
    """
    hypotheses, references = _check_texts(hypotheses, references)
    return {
        "bleu": bleu(hypotheses, references),
        "bleu_lc_tok": bleu_lc_tok(hypotheses, references),
        "chrf": chrf(hypotheses, references),
    }


def metric_signatures() -> dict[str, str]:
    """sacrebleu's signature of each score (what to print next to the numbers).

    Examples:
      >>> metric_signatures()["bleu_lc_tok"]
      'nrefs:1|case:lc|eff:no|tok:13a|smooth:exp|version:...'
    """
    metrics = {"bleu": _bleu_metric(False), "bleu_lc_tok": _bleu_metric(True),
               "chrf": _chrf_metric()}
    out = {}
    for name, metric in metrics.items():
        metric.corpus_score(["a"], [["a"]])  # sacrebleu knows the reference count only then
        out[name] = str(metric.get_signature())
    return out
