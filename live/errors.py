"""Errors of live operations (lifecycle, telemetry, conformance, tactical resolution).

Design (as in :mod:`skytwin.airspace.errors`): one base class, :class:`LiveError`, under
the project's :class:`~skytwin.airspace.errors.AirspaceError`; every leaf also inherits
the matching built-in, so callers may catch ``ValueError`` or ``PermissionError`` and the
server maps each leaf to one gRPC status in one place (``server/errors.py``):

* :class:`IllegalTransitionError` (``ValueError``): the lifecycle has no such edge
  (e.g. ``ended -> activated``), whoever asks: FAILED_PRECONDITION.
* :class:`TransitionNotPermittedError` (``PermissionError``): the edge exists but this
  actor may not trigger it (an operator cannot declare its own flight conforming again):
  PERMISSION_DENIED.
* :class:`LiveInputError` (``ValueError``): malformed input to the pure functions
  (shapes, non-finite parameters): INVALID_ARGUMENT.
* :class:`ResolutionError` (``RuntimeError``): no advisory could be made; ``reason``
  says why (every candidate failed the planner, the validator or the conflict check).
"""

from __future__ import annotations

from skytwin.airspace.errors import AirspaceError

__all__ = ["IllegalTransitionError", "LiveError", "LiveInputError", "ResolutionError",
           "TransitionNotPermittedError"]


class LiveError(AirspaceError):
    """Base class of every live-operations error."""


class IllegalTransitionError(LiveError, ValueError):
    """The lifecycle has no edge ``from_state -> to_state``."""

    def __init__(self, from_state: str, to_state: str, message: str | None = None):
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(message or f"a flight cannot go from {from_state} to {to_state}")


class TransitionNotPermittedError(LiveError, PermissionError):
    """The edge exists, but ``actor`` may not trigger it."""

    def __init__(self, from_state: str, to_state: str, actor: str, allowed=()):
        self.from_state = from_state
        self.to_state = to_state
        self.actor = actor
        self.allowed = tuple(allowed)
        who = ", ".join(self.allowed) or "nobody"
        super().__init__(f"{actor} may not move a flight from {from_state} to {to_state} "
                         f"(only: {who})")


class LiveInputError(LiveError, ValueError):
    """Malformed input to a live-operations function."""


class ResolutionError(LiveError, RuntimeError):
    """No advisory could be produced; ``reason`` explains what every candidate hit."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)
