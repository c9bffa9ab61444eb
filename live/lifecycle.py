"""Flight lifecycle: the states of an operation and who may move it between them.

Definition
----------
States (ASTM F3548-21 operational intent states, plus the booking states of SkyTwin):

* ``accepted``      booked and strategically deconflicted, not yet flying;
* ``activated``     airborne (or about to take off) and conforming to its approved 4D
                    trajectory;
* ``nonconforming`` airborne and outside its conformance volume (see
                    :mod:`skytwin.live.conformance`), expected to return to it;
* ``contingent``    airborne and not expected to return (an excursion past its limit,
                    lost link, or declared by the operator or ordered by a regulator):
                    other traffic must keep clear of its measured state, not of its plan;
* ``ended``         landed or otherwise finished (terminal);
* ``cancelled``     withdrawn before it flew (terminal).

Edges and the actors that may trigger each (:data:`TRANSITIONS`):

================  ==============  ===================================================
from              to              who
================  ==============  ===================================================
accepted          activated       operator (take-off), service (first valid telemetry)
accepted          cancelled       operator, regulator
activated         nonconforming   service (conformance timers)
nonconforming     activated       service (back in conformance long enough)
activated         contingent      operator (declares), regulator (orders it down)
nonconforming     contingent      operator, regulator, service (excursion or silence
                                  past the limit)
activated         ended           operator (landed), service (plan over, at the goal)
nonconforming     ended           operator, service
contingent        ended           operator, regulator, service
================  ==============  ===================================================

Basis: F3548-21 lets the USS (here: the service) change Activated <-> Nonconforming from
its own conformance monitoring, and moves to Contingent when conformance is not expected
to be regained; an operator may not declare its own flight conforming again (only the
measurements can), a regulator may order an airborne flight down (Contingent) but
not end a flight it does not fly, except a Contingent one it has confirmed landed.
Everything not in the table raises :class:`~skytwin.live.errors.IllegalTransitionError`
(no edge) or :class:`~skytwin.live.errors.TransitionNotPermittedError` (edge, wrong
actor); a transition to the current state is illegal too, so a retried command is
detected by its caller, not silently repeated.

The table is plain data (a dict of frozensets) so that the server, the docs and the tests
read the same thing.

Examples
--------
>>> ev = transition("accepted", "activated", "operator", flight_id="f1", t_s=10.0)
>>> (ev.from_state, ev.to_state, ev.actor)
('accepted', 'activated', 'operator')
>>> transition("ended", "activated", "service")
Traceback (most recent call last):
...
skytwin.live.errors.IllegalTransitionError: a flight cannot go from ended to activated
"""

from __future__ import annotations

from dataclasses import dataclass

from skytwin.live.errors import IllegalTransitionError, LiveInputError, \
    TransitionNotPermittedError

__all__ = ["ACTORS", "AIRBORNE", "STATES", "TERMINAL", "TRANSITIONS", "Transition",
           "allowed_actors", "transition"]

ACCEPTED = "accepted"
ACTIVATED = "activated"
NONCONFORMING = "nonconforming"
CONTINGENT = "contingent"
ENDED = "ended"
CANCELLED = "cancelled"

STATES = (ACCEPTED, ACTIVATED, NONCONFORMING, CONTINGENT, ENDED, CANCELLED)
AIRBORNE = frozenset({ACTIVATED, NONCONFORMING, CONTINGENT})
TERMINAL = frozenset({ENDED, CANCELLED})

OPERATOR = "operator"
SERVICE = "service"
REGULATOR = "regulator"
ACTORS = (OPERATOR, SERVICE, REGULATOR)

TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    (ACCEPTED, ACTIVATED): frozenset({OPERATOR, SERVICE}),
    (ACCEPTED, CANCELLED): frozenset({OPERATOR, REGULATOR}),
    (ACTIVATED, NONCONFORMING): frozenset({SERVICE}),
    (NONCONFORMING, ACTIVATED): frozenset({SERVICE}),
    (ACTIVATED, CONTINGENT): frozenset({OPERATOR, REGULATOR}),
    (NONCONFORMING, CONTINGENT): frozenset({OPERATOR, REGULATOR, SERVICE}),
    (ACTIVATED, ENDED): frozenset({OPERATOR, SERVICE}),
    (NONCONFORMING, ENDED): frozenset({OPERATOR, SERVICE}),
    (CONTINGENT, ENDED): frozenset({OPERATOR, REGULATOR, SERVICE}),
}
"""Every legal edge ``(from, to)`` and the actors that may trigger it."""


@dataclass(frozen=True)
class Transition:
    """One state change of one flight (the event the store keeps and Watch publishes).

    Attributes
    ----------
    flight_id : str
    from_state, to_state : str
    actor : str
        ``operator``, ``service`` or ``regulator``.
    t_s : float
        When it happened [s since the Unix epoch].
    reason : str
        Machine-readable cause, e.g. ``out_of_volume``, ``no_telemetry``,
        ``excursion_limit``, ``back_in_conformance``, ``first_telemetry``, ``declared``.
    detail : str
        Human-readable evidence (deviation, timer values).
    """

    flight_id: str
    from_state: str
    to_state: str
    actor: str
    t_s: float
    reason: str = ""
    detail: str = ""


def _check_state(name: str, value: str) -> None:
    if value not in STATES:
        raise LiveInputError(f"{name} must be one of {', '.join(STATES)}, got {value!r}")


def allowed_actors(from_state: str, to_state: str) -> frozenset[str]:
    """Actors that may trigger ``from_state -> to_state`` (empty when no such edge)."""
    _check_state("from_state", from_state)
    _check_state("to_state", to_state)
    return TRANSITIONS.get((from_state, to_state), frozenset())


def transition(from_state: str, to_state: str, actor: str, *, flight_id: str = "",
               t_s: float = 0.0, reason: str = "", detail: str = "") -> Transition:
    """Check one state change and return its event.

    Raises
    ------
    LiveInputError
        Unknown state or actor.
    IllegalTransitionError
        No edge ``from_state -> to_state`` (including staying in the same state and
        leaving a terminal state).
    TransitionNotPermittedError
        The edge exists but ``actor`` may not trigger it.
    """
    if actor not in ACTORS:
        raise LiveInputError(f"actor must be one of {', '.join(ACTORS)}, got {actor!r}")
    allowed = allowed_actors(from_state, to_state)
    if not allowed:
        if from_state in TERMINAL:
            raise IllegalTransitionError(
                from_state, to_state,
                f"a flight cannot go from {from_state} to {to_state}")
        raise IllegalTransitionError(from_state, to_state)
    if actor not in allowed:
        raise TransitionNotPermittedError(from_state, to_state, actor, sorted(allowed))
    return Transition(flight_id, from_state, to_state, actor, float(t_s), reason, detail)
