"""The web map's HTTP side: page, JSON API and server push, on aiohttp.

Design
------
* **Same process, same core.** :func:`build_app` takes the gRPC server's
  :class:`~skytwin.server.service.ServiceCore` and an
  :class:`~skytwin.server.auth.Authenticator` loaded from the same token file, and
  runs on the same asyncio loop as ``grpc.aio`` (:func:`start_web`). Anything that can
  take more than a few milliseconds (zone creation, flight listing, point queries)
  leaves the loop through ``run_in_executor``, as the gRPC servicers do.
* **aiohttp** (PyPI, maintained by aio-libs): one dependency gives an asyncio HTTP
  server with TLS, streaming responses and compression; no hand-written HTTP.
* **Auth as in gRPC.** Every ``/api/`` route needs ``Authorization: Bearer <token>``
  (the same tokens and roles); the page keeps the token in ``sessionStorage`` and
  sends it in the header, never in a URL (the server refuses a ``token``/
  ``access_token`` query parameter so that one is never written to a log).
  Operators see only their own flights (the core's ``list_flights`` and
  ``Change.visible_to``/``for_caller``); only regulators create zones (the core
  raises ``WrongRoleError`` otherwise).
* **Server push** is Server-Sent Events framing (``text/event-stream``) on
  ``GET /api/events``, read by the page with ``fetch`` (``EventSource`` cannot send
  an Authorization header). It subscribes to the core's change feed (the one Watch
  uses): ``since`` replays retained changes after the sequence number the page's
  snapshot (``GET /api/state``) was taken at, so nothing falls between snapshot and
  stream. The core calls subscribers from booking threads; the callback only hands
  the change to the loop (``call_soon_threadsafe``).
* **Live drones** ride the same stream as ``drones`` events: when the server has a
  live-operations hub, one :class:`~skytwin.server.web.live_drones.DroneFeed` task
  per app snapshots the airborne drones (newest report, conformance state) whenever
  telemetry was accepted, at most 4 times a second, and every stream sends it
  filtered to its caller (see that module for why a snapshot and not each report).
* **CORS closed.** No ``Access-Control-Allow-*`` header is ever sent (a browser then
  refuses cross-origin reads), and a request whose ``Origin`` is not this server's is
  refused (403) before any work. ``Content-Security-Policy: default-src 'self'`` keeps
  the page from loading anything from another host.
* **TLS** when the gRPC side has it: :func:`start_web` takes the same certificate and
  key (``https://`` URL).
* Errors map through :func:`skytwin.server.errors.status_for` (one table) to HTTP
  codes, as JSON ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
import time
from pathlib import Path

from aiohttp import web

from skytwin.server.web import views
from skytwin.server.web.live_drones import DroneFeed, drones_for_caller

__all__ = ["STATIC_DIR", "WebServer", "build_app", "start_web"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

_HTTP = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
         "RESOURCE_EXHAUSTED": 429, "DEADLINE_EXCEEDED": 504, "FAILED_PRECONDITION": 409,
         "INVALID_ARGUMENT": 400, "UNAVAILABLE": 503}

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: "
        "blob:; connect-src 'self'; worker-src 'self' blob:; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")

CORE = web.AppKey("core", object)
AUTH = web.AppKey("auth", object)
WATCHERS = web.AppKey("watchers", set)
DRONES = web.AppKey("drones", object)

_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".txt": "text/plain", ".md": "text/plain", ".png": "image/png"}


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def _guard(request: web.Request, handler):
    """Security headers, closed CORS, no token in URLs, domain errors -> HTTP."""
    origin = request.headers.get("Origin")
    if origin is not None:
        own = f"{request.scheme}://{request.host}"
        if origin != own:
            return _error(403, "PERMISSION_DENIED", f"cross-origin request from {origin} "
                          "refused (CORS is closed)")
    if {"token", "access_token"} & set(request.query):
        return _error(400, "INVALID_ARGUMENT", "send the token in the Authorization "
                      "header, never in the URL")
    try:
        resp = await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:   # noqa: BLE001 - mapped in one place, like gRPC
        from skytwin.server.errors import _message, status_for
        code = status_for(exc)
        if code is None:
            cid = secrets.token_hex(4)
            log.exception("web: internal error (correlation id %s)", cid)
            return _error(500, "INTERNAL", f"internal error (correlation id {cid})")
        return _error(_HTTP.get(code.name, 400), code.name, _message(exc))
    if not getattr(resp, "prepared", False):
        resp.headers["Content-Security-Policy"] = _CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _caller(request: web.Request):
    value = request.headers.get("Authorization")
    meta = [] if value is None else [("authorization", value)]
    return request.app[AUTH].caller(meta)   # UnauthenticatedError -> 401


def _security_headers(resp) -> None:
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-store"


async def _run(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


# ------------------------------------------------------------------------- routes
async def _index(request):
    return web.FileResponse(STATIC_DIR / "index.html",
                            headers={"Content-Type": "text/html; charset=utf-8"})


async def _static(request):
    rel = request.match_info["path"]
    path = (STATIC_DIR / rel).resolve()
    if STATIC_DIR not in path.parents or not path.is_file() or path.suffix not in _TYPES:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": _TYPES[path.suffix],
                                           "Cache-Control": "no-cache"})


async def _session(request):
    c = _caller(request)
    return web.json_response({"name": c.name, "role": c.role,
                              "operator_id": c.operator_id})


async def _twin(request):
    _caller(request)
    core = request.app[CORE]
    lod = request.query.get("lod", "auto")
    payload = await _run(views.buildings_payload, core.twin, lod)
    info = core.info()
    resp = web.json_response({
        "buildings": payload, "ceiling_agl_m": info["ceiling_agl_m"],
        "clearance_m": core.twin.clearance_m, "source": info.get("source", ""),
        "ground_min_m": float(core.twin.ground_m.min()),
        "ground_max_m": float(core.twin.ground_m.max())})
    resp.enable_compression()
    return resp


async def _district(request):
    _caller(request)
    core = request.app[CORE]
    raw = request.query.get("bbox", "")
    try:
        box = [float(v) for v in raw.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise ValueError("bbox must be west,south,east,north in degrees")
    resp = web.json_response(await _run(views.buildings_in_box, core.twin, box))
    resp.enable_compression()
    return resp


def _flights(core, caller, t_from_s) -> list:
    out, token = [], None
    while True:
        recs, token = core.list_flights(caller, status="accepted", t0_s=t_from_s,
                                        page_size=core.limits.max_page_size,
                                        page_token=token)
        out += [views.flight_json(r) for r in recs]
        if not token:
            return out


def _state(core, caller, t_from_s) -> dict:
    seq = core.sequence
    zones = [views.zone_json(core, z) for z in core.list_zones()]
    return {"sequence": seq, "now_s": core.clock(), "zones": zones,
            "flights": _flights(core, caller, t_from_s)}


async def _ground(request):
    _caller(request)
    core = request.app[CORE]
    risk = request.query.get("risk", "1")
    if risk not in ("0", "1"):
        raise ValueError(f"risk must be 0 or 1, got {risk[:16]!r}")
    resp = web.json_response(await _run(views.ground_json, core, risk == "1"))
    resp.enable_compression()
    return resp


async def _state_route(request):
    c = _caller(request)
    core = request.app[CORE]
    since = float(request.query.get("from_s", core.clock() - 3600.0))
    resp = web.json_response(await _run(_state, core, c, since))
    resp.enable_compression()
    return resp


def _num(request, name, default=None) -> float:
    v = request.query.get(name)
    if v is None:
        if default is None:
            raise ValueError(f"query parameter {name} is required")
        return default
    try:
        return float(v)
    except ValueError:
        raise ValueError(f"query parameter {name} must be a number, got {v[:32]!r}") \
            from None


async def _point(request):
    _caller(request)
    core = request.app[CORE]
    lon, lat = _num(request, "lon"), _num(request, "lat")
    alt = _num(request, "alt_agl_m", 30.0)
    t = request.query.get("t")
    return web.json_response(await _run(views.point_info, core, lon, lat, alt,
                                        None if t in (None, "") else float(t)))


async def _create_zone(request):
    c = _caller(request)
    core = request.app[CORE]
    if not c.is_regulator:
        from skytwin.server.service import WrongRoleError
        raise WrongRoleError("only regulators create zones")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("the request body must be JSON") from None
    zone = views.zone_from_json(body, f"WEB-{int(time.time())}-{secrets.token_hex(2)}")
    zone, affected = await _run(lambda: core.create_zone(c, zone))
    return web.json_response({"zone": views.zone_json(core, zone),
                              "affected_flight_ids": list(affected)}, status=201)


async def _events(request):
    c = _caller(request)
    core = request.app[CORE]
    since = request.query.get("since")
    since = None if since in (None, "") else int(since)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)

    def on_change(ch):   # booking threads: hand over to the loop only
        if ch.visible_to(c):
            loop.call_soon_threadsafe(_put, queue, ch.for_caller(c))

    def on_drones(snap):   # the drone feed's task, on this loop
        _put(queue, ("drones", snap))

    feed = request.app[DRONES]
    seq, backlog = core.subscribe(on_change, since_sequence=since)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "X-Accel-Buffering": "no"})
    _security_headers(resp)
    request.app[WATCHERS].add(resp)
    try:
        await resp.prepare(request)
        await resp.write(_sse("ready", {"sequence": seq}))
        for ch in backlog:
            if ch.visible_to(c):
                await resp.write(_sse("change", views.change_json(core, ch.for_caller(c))))
        if feed is not None:
            if feed.latest is not None:
                await resp.write(_sse("drones", drones_for_caller(feed.latest, c)))
            feed.listeners.add(on_drones)
        while True:
            try:
                ch = await asyncio.wait_for(queue.get(), timeout=15.0)
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if ch is None:
                break
            if isinstance(ch, tuple):
                await resp.write(_sse("drones", drones_for_caller(ch[1], c)))
                continue
            await resp.write(_sse("change", views.change_json(core, ch)))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        core.unsubscribe(on_change)
        if feed is not None:
            feed.listeners.discard(on_drones)
        request.app[WATCHERS].discard(resp)
    return resp


def _put(queue, ch):
    try:
        queue.put_nowait(ch)
    except asyncio.QueueFull:   # a stalled page: it re-syncs from /api/state
        if not isinstance(ch, tuple):
            log.warning("web: event queue full, change %d dropped", ch.sequence)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def build_app(core, authenticator, hub=None) -> web.Application:
    """The aiohttp application over ``core`` with ``authenticator``'s tokens.

    ``hub``: the server's :class:`~skytwin.server.live.LiveHub` (live drones from
    telemetry on the event stream), or None (drones along the approved trajectories).
    """
    app = web.Application(middlewares=[_guard], client_max_size=1024 * 1024)
    app[CORE] = core
    app[AUTH] = authenticator
    app[WATCHERS] = set()
    app[DRONES] = None if hub is None else DroneFeed(hub, core.twin.frame)
    if hub is not None:
        async def feed_task(app):
            task = asyncio.get_running_loop().create_task(app[DRONES].run())
            yield
            task.cancel()
        app.cleanup_ctx.append(feed_task)
    app.router.add_get("/", _index)
    app.router.add_get("/static/{path:.+}", _static)
    app.router.add_get("/api/session", _session)
    app.router.add_get("/api/twin", _twin)
    app.router.add_get("/api/buildings", _district)
    app.router.add_get("/api/state", _state_route)
    app.router.add_get("/api/ground", _ground)
    app.router.add_get("/api/point", _point)
    app.router.add_post("/api/zones", _create_zone)
    app.router.add_get("/api/events", _events)
    return app


class WebServer:
    """A running web map: ``url``, ``port``; ``await stop()``."""

    def __init__(self, runner: web.AppRunner, url: str, port: int):
        self.runner, self.url, self.port = runner, url, port

    async def stop(self) -> None:
        await self.runner.shutdown()
        await self.runner.cleanup()


async def start_web(core, authenticator, host: str = "127.0.0.1", port: int = 0, *,
                    tls_cert=None, tls_key=None, hub=None) -> WebServer:
    """Serve the map on ``host:port`` (0: any free port) in the running loop
    (``hub``: see :func:`build_app`)."""
    app = build_app(core, authenticator, hub)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=1.0)
    await runner.setup()
    ctx = None
    if tls_cert is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls_cert), str(tls_key))
    site = web.TCPSite(runner, host.strip("[]"), port, ssl_context=ctx,
                       reuse_port=False)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]
    h = host if ":" not in host or host.startswith("[") else f"[{host}]"
    url = f"{'https' if ctx else 'http'}://{h}:{bound}/"
    return WebServer(runner, url, bound)
