"""Flight lifecycle: every legal edge for exactly its actors, everything else refused."""

from __future__ import annotations

import itertools

import pytest

from skytwin.live.errors import IllegalTransitionError, LiveInputError, \
    TransitionNotPermittedError
from skytwin.live.lifecycle import ACTORS, STATES, TERMINAL, TRANSITIONS, transition

# the table of the issue, written out independently of live/lifecycle.py
EXPECTED = {
    ("accepted", "activated"): {"operator", "service"},
    ("accepted", "cancelled"): {"operator", "regulator"},
    ("activated", "nonconforming"): {"service"},
    ("nonconforming", "activated"): {"service"},
    ("activated", "contingent"): {"operator", "regulator"},
    ("nonconforming", "contingent"): {"operator", "regulator", "service"},
    ("activated", "ended"): {"operator", "service"},
    ("nonconforming", "ended"): {"operator", "service"},
    ("contingent", "ended"): {"operator", "regulator", "service"},
}


def test_table_matches_the_issue():
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize("frm,to,actor", list(itertools.product(STATES, STATES, ACTORS)))
def test_every_combination(frm, to, actor):
    allowed = EXPECTED.get((frm, to))
    if allowed is None:
        with pytest.raises(IllegalTransitionError) as e:
            transition(frm, to, actor)
        assert isinstance(e.value, ValueError)
        assert frm in str(e.value) and to in str(e.value)
    elif actor not in allowed:
        with pytest.raises(TransitionNotPermittedError) as e:
            transition(frm, to, actor)
        assert isinstance(e.value, PermissionError)
        assert actor in str(e.value)
    else:
        ev = transition(frm, to, actor, flight_id="f", t_s=5.0, reason="r")
        assert (ev.flight_id, ev.from_state, ev.to_state, ev.actor, ev.t_s, ev.reason) == \
            ("f", frm, to, actor, 5.0, "r")


def test_terminal_states_have_no_way_out():
    for frm in TERMINAL:
        for to in STATES:
            with pytest.raises(IllegalTransitionError):
                transition(frm, to, "service")


def test_operator_cannot_declare_itself_conforming():
    with pytest.raises(TransitionNotPermittedError, match="only: service"):
        transition("nonconforming", "activated", "operator")


def test_unknown_state_or_actor():
    with pytest.raises(LiveInputError):
        transition("flying", "ended", "operator")
    with pytest.raises(LiveInputError):
        transition("activated", "ended", "pilot")
