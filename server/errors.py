"""Domain errors -> gRPC status codes, in exactly one place.

Design
------
Servicers and the service core raise the domain's typed errors and never set a status
themselves. :class:`ErrorInterceptor` (one ``grpc.aio.ServerInterceptor``, applied to
every service, unary and streaming alike) catches them and aborts the call with the
status code of :func:`status_for` and the error's own message, which says what to fix
(the domain messages name the field, the zone, the building or the flight).

===============================================  =======================
error                                            status
===============================================  =======================
UnauthenticatedError                             UNAUTHENTICATED
NotOwnerError, WrongRoleError (PermissionError)  PERMISSION_DENIED
NotFoundError, ZoneNotFoundError, any KeyError   NOT_FOUND
  that is an AirspaceError (store not-found)
RequestTooLargeError, OverloadedError,           RESOURCE_EXHAUSTED
  PlannerBusyError (server at capacity)
StoreUnavailableError (the store cannot be       UNAVAILABLE
  reached, read or written now: a failed
  write or commit, a lost database, closing)
DeadlineError, TimeoutError                      DEADLINE_EXCEEDED
StartBlocked, GoalBlocked, PlanError (no route,  FAILED_PRECONDITION
  check failed), BookingRejectedError,
  IdempotencyMismatchError,
  IllegalTransitionError (lifecycle)
PlanError(code="invalid"), MalformedInputError,  INVALID_ARGUMENT
  ZoneError, GridCodeError, OutsideTwinError,
  LimitError, other AirspaceError, ValueError,
  RecursionError (input nested too deep)
anything else                                    INTERNAL, "internal error
                                                 (correlation id X)", traceback logged
===============================================  =======================

Errors raised by ``context.abort`` (already a status) and cancellations pass through
unchanged. The order of the table matters: ``PlanError`` and ``RequestTooLargeError`` are
``ValueError`` subclasses too. Every message is cut to :data:`MAX_MESSAGE_CHARS`
characters, whatever raised it, so that no error can exceed gRPC's metadata limit
(the edge checks already echo at most a short prefix of caller input).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import grpc

from skytwin.airspace.errors import AirspaceError
from skytwin.server.service import (
    BookingRejectedError,
    DeadlineError,
    IdempotencyMismatchError,
    NotFoundError,
    OverloadedError,
    RequestTooLargeError,
    UnauthenticatedError,
)

__all__ = ["MAX_MESSAGE_CHARS", "ErrorInterceptor", "status_for", "wrap_handler"]

MAX_MESSAGE_CHARS = 1000

log = logging.getLogger(__name__)


def status_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status code for a domain error; ``None`` for an unexpected error."""
    from skytwin.planner.route import PlanError, PlannerBusyError
    if isinstance(exc, UnauthenticatedError):
        return grpc.StatusCode.UNAUTHENTICATED
    if isinstance(exc, PermissionError):
        return grpc.StatusCode.PERMISSION_DENIED
    if isinstance(exc, NotFoundError) or (isinstance(exc, KeyError)
                                          and isinstance(exc, AirspaceError)):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, (RequestTooLargeError, OverloadedError, PlannerBusyError)):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    from skytwin.server.store import StoreUnavailableError
    if isinstance(exc, StoreUnavailableError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, IdempotencyMismatchError):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, RecursionError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, (DeadlineError, TimeoutError, asyncio.TimeoutError)):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(exc, PlanError):
        return (grpc.StatusCode.INVALID_ARGUMENT if exc.code == "invalid"
                else grpc.StatusCode.FAILED_PRECONDITION)
    if isinstance(exc, BookingRejectedError):
        return grpc.StatusCode.FAILED_PRECONDITION
    from skytwin.live.errors import IllegalTransitionError
    if isinstance(exc, IllegalTransitionError):   # e.g. ending a flight that never flew
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, (AirspaceError, ValueError)):
        return grpc.StatusCode.INVALID_ARGUMENT
    return None


def _message(exc: BaseException) -> str:
    msg = str(exc)
    if isinstance(exc, KeyError) and not isinstance(exc, AirspaceError) and exc.args:
        msg = str(exc.args[0])
    if isinstance(exc, RecursionError):
        msg = "input nested too deep"
    msg = msg or type(exc).__name__
    if len(msg) > MAX_MESSAGE_CHARS:
        msg = msg[:MAX_MESSAGE_CHARS - 3] + "..."
    return msg


async def _abort(context, exc: BaseException, method: str):
    code = status_for(exc)
    if code is None:
        cid = uuid.uuid4().hex[:12]
        log.error("internal error in %s (correlation id %s)", method, cid, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (correlation id {cid})")
    await context.abort(code, _message(exc))


def _passthrough(exc) -> bool:
    return isinstance(exc, (asyncio.CancelledError, grpc.aio.AbortError))


def wrap_handler(handler, method: str, around):
    """Rebuild ``handler`` with each behaviour wrapped by ``around`` (shared with auth).

    ``around(behaviour, method)`` returns a new unary behaviour; ``around.stream`` the
    same for response-streaming behaviours.
    """
    if handler is None:
        return None
    kw = {"request_deserializer": handler.request_deserializer,
          "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(around(handler.unary_unary, method), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            around.stream(handler.unary_stream, method), **kw)
    if handler.stream_stream:   # LiveService.StreamTelemetry (same shape: iterator in)
        return grpc.stream_stream_rpc_method_handler(
            around.stream(handler.stream_stream, method), **kw)
    return handler  # client-streaming (stream in, one response out): none in this API


class _ErrorsAround:
    def __call__(self, behaviour, method):
        async def unary(request, context):
            try:
                return await behaviour(request, context)
            except BaseException as exc:
                if _passthrough(exc):
                    raise
                await _abort(context, exc, method)
        return unary

    def stream(self, behaviour, method):
        async def streaming(request, context):
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                if _passthrough(exc) or isinstance(exc, GeneratorExit):
                    raise
                await _abort(context, exc, method)
        return streaming


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps domain errors to status codes for every RPC (see module docstring)."""

    def __init__(self):
        self._around = _ErrorsAround()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        return wrap_handler(handler, handler_call_details.method, self._around)
