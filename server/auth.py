"""Bearer-token authentication, roles, and TLS credentials.

Design
------
Tokens come from a TOML file (``tomllib``, no extra dependency), one ``[[token]]`` table
each: ``token``, ``name``, ``role`` (``"operator"`` with its ``operator_id``, or
``"regulator"``), and for an operator optionally ``authorisations``: the derived zones
(issue 13, :mod:`server.ground`) it is authorised to fly in, as a list of zone ids
(``"DZ-hospital-way_123"``) or rule ids (``"hospital"``: every zone of that rule), e.g.
``authorisations = ["hospital", "DZ-police-way_42"]``. An *authorisation* derived zone
is avoided by every other operator; restricted zones are never lifted this way (a
regulator disables or re-categorises one with ZoneService.OverrideDerivedZone). ``fixtures/auth/dev_tokens.toml`` holds obviously fake development
tokens; a real deployment writes its own file (and never reuses those).

Clients send ``authorization: Bearer <token>`` metadata. :class:`AuthInterceptor`
resolves it for every RPC of the SkyTwin services (health checking and reflection stay
open, as load balancers and grpcurl expect) and puts the :class:`~server.service.Caller`
in a context variable for the servicers (:func:`current_caller`); a missing or unknown
token raises :class:`~server.service.UnauthenticatedError`, which the error interceptor
turns into UNAUTHENTICATED. *What* a role may do is decided by the service core
(operators: own flights; regulators: zones and every flight), not here.

Roles and powers (enforced by :class:`~server.service.ServiceCore`)
    Operator (with its ``operator_id``): plans routes (PlanRoute); books, lists, reads
    and cancels **its own** flights only (another operator's flight id gives
    PERMISSION_DENIED, ListFlights shows only its own, and an error message never names
    another operator's flight); reads zones and grid codes; its Watch stream carries
    zone changes, its own flights' changes, and in a zone change only its own affected
    flight ids.

    Regulator: everything an operator may read, for **every** operator (GetFlight,
    ListFlights of any or all operators, Watch with every flight and every affected
    flight id); alone creates, updates, deletes, imports and exports no-fly zones; may
    cancel **any operator's flight**, which is intended (an emergency, a police
    operation, a zone that must be cleared), but only with a ``reason``
    (CancelFlightRequest.reason; refused with INVALID_ARGUMENT without one): the reason
    is stored with the flight (``cancel_reason``) and in the store's event row, and
    sent to the operator in the cancel event of its Watch stream and in the flight
    (Flight.cancel_reason). Regulators do not book flights.

    Health checking and reflection need no token.

Token comparison uses ``hmac.compare_digest`` against every known token so that timing
does not reveal a prefix. TLS: :func:`server_credentials` reads a PEM certificate chain
and key for ``grpc.ssl_server_credentials``; without them the server listens in plain
text (fine on loopback, say so in deployment docs).
"""

from __future__ import annotations

import contextvars
import hmac
import tomllib
from pathlib import Path

import grpc

from skytwin.airspace.errors import MalformedInputError
from skytwin.server.errors import wrap_handler
from skytwin.server.service import OPERATOR, REGULATOR, Caller, UnauthenticatedError

__all__ = [
    "DEV_TOKENS",
    "AuthInterceptor",
    "Authenticator",
    "caller_or_none",
    "current_caller",
    "load_tokens",
    "server_credentials",
]

DEV_TOKENS = Path(__file__).resolve().parents[1] / "fixtures" / "auth" / "dev_tokens.toml"
_CALLER: contextvars.ContextVar = contextvars.ContextVar("skytwin_caller", default=None)
_OPEN_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def load_tokens(path) -> dict[str, Caller]:
    """``{token: Caller}`` from a TOML token file (MalformedInputError naming the entry)."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MalformedInputError(str(p), None, "auth file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MalformedInputError(str(p), None, f"not valid TOML: {exc}") from exc
    entries = doc.get("token")
    if not isinstance(entries, list) or not entries:
        raise MalformedInputError(str(p), None, "expected one or more [[token]] tables")
    out: dict[str, Caller] = {}
    for n, e in enumerate(entries):
        where = f"token[{n}]"
        tok, role = e.get("token"), e.get("role")
        if not isinstance(tok, str) or len(tok) < 8:
            raise MalformedInputError(str(p), where, "token must be a string of >= 8 chars")
        if role not in (OPERATOR, REGULATOR):
            raise MalformedInputError(str(p), where, f"role must be 'operator' or "
                                      f"'regulator', got {role!r}")
        op = e.get("operator_id")
        if role == OPERATOR and (not isinstance(op, str) or not op):
            raise MalformedInputError(str(p), where, "an operator token needs operator_id")
        if tok in out:
            raise MalformedInputError(str(p), where, "duplicate token")
        auths = e.get("authorisations", [])
        if not (isinstance(auths, list) and all(isinstance(x, str) and x for x in auths)):
            raise MalformedInputError(str(p), where, "authorisations must be a list of "
                                      "derived zone ids or rule ids (strings)")
        out[tok] = Caller(name=str(e.get("name") or op or role), role=role,
                          operator_id=op if role == OPERATOR else None,
                          authorisations=tuple(auths) if role == OPERATOR else ())
    return out


class Authenticator:
    """Resolves ``authorization`` metadata to a :class:`Caller`."""

    def __init__(self, tokens: dict[str, Caller]):
        self._tokens = [(t.encode(), c) for t, c in tokens.items()]

    @classmethod
    def from_file(cls, path) -> Authenticator:
        return cls(load_tokens(path))

    def caller(self, metadata) -> Caller:
        value = None
        for k, v in metadata or ():
            if k.lower() == "authorization":
                value = v
                break
        if value is None:
            raise UnauthenticatedError("missing credentials: send metadata "
                                       "'authorization: Bearer <token>'")
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        scheme, _, tok = value.partition(" ")
        if scheme.lower() != "bearer" or not tok.strip():
            raise UnauthenticatedError("authorization metadata must be 'Bearer <token>'")
        given = tok.strip().encode()
        found = None
        for known, c in self._tokens:
            if hmac.compare_digest(known, given):
                found = c
        if found is None:
            raise UnauthenticatedError("unknown or revoked token")
        return found


def caller_or_none() -> Caller | None:
    """The authenticated caller of the RPC being served, or None outside one."""
    return _CALLER.get()


def current_caller() -> Caller:
    """The authenticated caller of the RPC being served."""
    c = _CALLER.get()
    if c is None:
        raise UnauthenticatedError("no authenticated caller for this call")
    return c


class _AuthAround:
    def __init__(self, auth: Authenticator):
        self.auth = auth

    def __call__(self, behaviour, method):
        auth = self.auth

        async def unary(request, context):
            token = _CALLER.set(auth.caller(context.invocation_metadata()))
            try:
                return await behaviour(request, context)
            finally:
                _CALLER.reset(token)
        return unary

    def stream(self, behaviour, method):
        auth = self.auth

        async def streaming(request, context):
            _CALLER.set(auth.caller(context.invocation_metadata()))
            async for item in behaviour(request, context):
                yield item
        return streaming


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every SkyTwin RPC (health and reflection stay open).

    Must run *inside* the error interceptor (listed after it) so that its
    UnauthenticatedError is mapped to a status.
    """

    def __init__(self, auth: Authenticator):
        self._around = _AuthAround(auth)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler_call_details.method.startswith(_OPEN_PREFIXES):
            return handler
        return wrap_handler(handler, handler_call_details.method, self._around)


def server_credentials(cert_path, key_path) -> grpc.ServerCredentials:
    """TLS credentials from PEM files (certificate chain, private key)."""
    cert = Path(cert_path).read_bytes()
    key = Path(key_path).read_bytes()
    return grpc.ssl_server_credentials([(key, cert)])
