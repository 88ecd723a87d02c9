"""Early stopping: improvement rule, patience, min_delta, modes and serialisation."""

import json
import math

import pytest

from jdrop.train import EarlyStopping, EarlyStoppingState


def _run(rule, values):
    state = rule.init()
    states = []
    for i, v in enumerate(values):
        state = rule.update(state, v, step=10 * i, epoch=i)
        states.append(state)
    return states


def test_min_mode_patience():
    states = _run(EarlyStopping("loss", patience=2), [3.0, 2.0, 2.5, 1.5, 1.6, 1.7, 1.0])
    assert [s.stop for s in states] == [False, False, False, False, False, True, False]
    assert [s.bad_evals for s in states] == [0, 0, 1, 0, 1, 2, 0]
    assert states[5].best == 1.5 and states[5].best_step == 30 and states[5].best_epoch == 3


def test_max_mode_and_min_delta():
    rule = EarlyStopping("accuracy", mode="max", patience=1, min_delta=0.05)
    states = _run(rule, [0.5, 0.54, 0.6])
    assert [s.best for s in states] == [0.5, 0.5, 0.6]
    assert [s.stop for s in states] == [False, True, False]


def test_nan_never_improves():
    states = _run(EarlyStopping("loss", patience=1), [math.nan, 1.0, math.nan])
    assert states[0].best is None and states[0].stop
    assert states[1].best == 1.0 and states[2].stop


def test_state_round_trips_through_json():
    state = _run(EarlyStopping("loss", patience=3), [1.0, 2.0])[-1]
    again = EarlyStoppingState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and again.bad_evals == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(metric=""), "metric=''"),
        (dict(metric="loss", mode="lowest"), "mode='lowest'"),
        (dict(metric="loss", patience=0), "patience=0"),
        (dict(metric="loss", patience=2.0), "patience=2.0"),
        (dict(metric="loss", min_delta=-1.0), "min_delta=-1.0"),
        (dict(metric="loss", split=""), "split=''"),
    ],
)
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)
