"""BLEU / chrF for the translation experiment: hand-checked values, sacrebleu's CLI, errors."""

import doctest
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from experiments.translation import metrics
from experiments.translation.metrics import (
    bleu,
    bleu_lc_tok,
    chrf,
    metric_signatures,
    sentence_chrf,
    translation_scores,
)

HYPS = [
    "Ein Mann mit einem orangefarbenen Hut starrt auf etwas.",
    "Ein Boston Terrier läuft über das Gras.",
    "Ein Mädchen in einem Karateanzug bricht einen Stock.",
    "Fünf Leute in Winterjacken und mit Helmen stehen im Schnee.",
    "Leute reparieren das Dach eines Hauses",
    "Ein T-Shirt, ein Hut & zwei \"Schuhe\".",
]
REFS = [
    "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt.",
    "Ein Boston Terrier läuft über saftig-grünes Gras vor einem weißen Zaun.",
    "Ein Mädchen in einem Karateanzug bricht einen Stock mit einem Tritt.",
    "Fünf Leute in Winterjacken und mit Helmen stehen mit Schneemobilen im Schnee.",
    "Leute Reparieren das Dach eines Hauses.",
    "Ein T-Shirt, ein Hut und zwei Schuhe.",
]


def test_doctests():
    result = doctest.testmod(metrics, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted >= 8


def reference_bleu(hyps, refs):
    """Papineni et al.'s corpus BLEU on whitespace tokens, no smoothing (multi-bleu.perl)."""
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hyps, refs, strict=True):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            hc = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            rc = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / 4
    bp = min(1.0, math.exp(1 - ref_len / hyp_len))
    return 100 * bp * math.exp(log_p)


def test_hand_checked_bleu():
    # p = 6/7, 4/6, 3/5, 2/4; hypothesis longer than the reference: no brevity penalty
    assert bleu(["the cat sat on the red mat"], ["the cat sat on the mat"]) == pytest.approx(
        100 * (6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25, abs=1e-9
    )
    # p = 6/6, 4/5, 3/4, 2/3; BP = exp(1 - 7/6)
    assert bleu(["the cat sat on the mat"], ["the cat sat on the red mat"]) == pytest.approx(
        100 * math.exp(1 - 7 / 6) * (1 * 4 / 5 * 3 / 4 * 2 / 3) ** 0.25, abs=1e-9
    )


def test_bleu_matches_an_independent_implementation_on_pretokenised_text():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    refs = [" ".join(rng.choice(words, rng.integers(6, 15))) for _ in range(40)]
    hyps = []
    for ref in refs:  # perturb: drop, replace and add words
        toks = [w if rng.random() > 0.25 else str(rng.choice(words)) for w in ref.split()]
        toks = [w for w in toks if rng.random() > 0.1] + list(rng.choice(words, rng.integers(0, 3)))
        hyps.append(" ".join(toks))
    expected = reference_bleu(hyps, refs)
    assert 5 < expected < 95
    assert bleu(hyps, refs) == pytest.approx(expected, abs=1e-9)
    upper = [h.upper() for h in hyps]
    assert bleu_lc_tok(upper, refs) == pytest.approx(expected, abs=1e-9)
    assert bleu(upper, refs) == 0.0


def test_identical_is_100_and_scores_order_sensibly():
    perfect = translation_scores(REFS, REFS)
    assert perfect == pytest.approx({"bleu": 100.0, "bleu_lc_tok": 100.0, "chrf": 100.0})
    scores = translation_scores(HYPS, REFS)
    assert 0 < scores["bleu"] < scores["bleu_lc_tok"] < 100  # "Reparieren" only matches lowercased
    assert 0 < scores["chrf"] < 100
    worse = translation_scores([h[: len(h) // 2] for h in HYPS], REFS)
    assert all(worse[k] < scores[k] for k in scores)


def test_lowercased_tokenised_bleu_is_case_and_punctuation_spacing_blind():
    hyps = ["TWO DOGS ARE PLAYING IN THE SNOW."]
    refs = ["two dogs are playing in the snow ."]
    assert bleu_lc_tok(hyps, refs) == pytest.approx(100.0)
    assert bleu(hyps, refs) < 10  # only "." matches (then sacrebleu smooths the zeros)


def cli(args, hyps, refs, tmp_path):
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(tmp_path / "ref.txt"), "-i",
         str(tmp_path / "hyp.txt"), "-b", "-w", "6", *args],
        capture_output=True, text=True, check=True,
    )
    return [float(x) for x in out.stdout.split()]


def test_agrees_with_the_sacrebleu_command_line(tmp_path):
    scores = translation_scores(HYPS, REFS)
    assert cli(["-m", "bleu"], HYPS, REFS, tmp_path) == [pytest.approx(scores["bleu"], abs=1e-5)]
    assert cli(["-m", "bleu", "-lc"], HYPS, REFS, tmp_path) == [
        pytest.approx(scores["bleu_lc_tok"], abs=1e-5)
    ]
    assert cli(["-m", "chrf"], HYPS, REFS, tmp_path) == [pytest.approx(scores["chrf"], abs=1e-5)]


def test_sentence_chrf():
    import sacrebleu

    values = sentence_chrf(HYPS, REFS)
    assert values.shape == (len(HYPS),) and values.dtype == np.float64
    for value, hyp, ref in zip(values, HYPS, REFS, strict=True):
        assert value == pytest.approx(sacrebleu.sentence_chrf(hyp, [ref]).score)
        assert value == pytest.approx(chrf([hyp], [ref]))  # one sentence: the corpus score
    assert sentence_chrf(REFS, REFS) == pytest.approx(np.full(len(REFS), 100.0))
    # the corpus score pools statistics: not the mean of the sentence scores
    assert chrf(HYPS, REFS) != pytest.approx(values.mean(), abs=1e-3)


def test_signatures():
    signatures = metric_signatures()
    assert set(signatures) == {"bleu", "bleu_lc_tok", "chrf"}
    assert "case:mixed" in signatures["bleu"] and "tok:13a" in signatures["bleu"]
    assert "case:lc" in signatures["bleu_lc_tok"]
    assert "nc:6" in signatures["chrf"] and "nw:0" in signatures["chrf"]


@pytest.mark.parametrize("fn", [bleu, bleu_lc_tok, chrf, sentence_chrf, translation_scores])
def test_errors_name_the_argument(fn):
    with pytest.raises(ValueError, match="got 2 hypotheses and 1 references"):
        fn(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="hypotheses must be a sequence of sentences"):
        fn("a b c", ["a b c"])
    with pytest.raises(TypeError, match="references must hold str, got int at index 0"):
        fn(["a"], [3])
    with pytest.raises(ValueError, match="at least one sentence"):
        fn([], [])
