"""skytwin.server.web: the live 3D web map, a transport like gRPC over the same core.

``skytwin serve`` starts it beside the gRPC server, in the same process and on the same
asyncio loop, over the same :class:`~skytwin.server.service.ServiceCore` and the same
token file (:func:`serve_with_web`). The page (``static/``) draws the twin with deck.gl
(vendored, see ``static/vendor/VENDOR.md`` and :mod:`.vendor`): extruded buildings,
zones as translucent volumes under a time slider, the caller's flights as animated 4D
paths, recent changes pushed by the server, a click panel (grid codes, heights,
blockers, zones) and, for regulators, zone drawing.

Why deck.gl: it draws extruded polygons, 3D paths and points in WGS84 with a camera
made for city-scale 3D (pitch, bearing, zoom), works with no basemap and no tile server
(the city model is the map), ships released minified UMD bundles under MIT, and keeps
100k+ polygons on the GPU. Only ``@deck.gl/core`` and ``@deck.gl/layers`` are needed
(1.1 MB, no build step); CesiumJS (Apache-2.0) would read our CZML directly but weighs
~30 MB with workers and assets, and expects imagery and terrain providers.

Modules: :mod:`.app` (aiohttp routes, auth, push), :mod:`.views` (what the page is
sent, as plain dicts), :mod:`.live_drones` (drones from telemetry, pushed),
:mod:`.vendor` (refreshes the vendored bundles).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from skytwin.server.web.app import WebServer, build_app, start_web

__all__ = ["DEV_WEB_PORT", "WebServer", "build_app", "serve_with_web", "start_web"]

log = logging.getLogger(__name__)

#: the map's port in development (with the default gRPC port 50051)
DEV_WEB_PORT = 8051


async def serve_with_web(config, web_port: int | None, on_ready=None,
                         web_host: str | None = None) -> None:
    """Run gRPC and (``web_port`` not None) the web map until SIGINT or SIGTERM.

    Same steps as :func:`skytwin.server.app.serve`, plus the web server on the core of
    the gRPC server (``server.skytwin_core``) and an authenticator from the same token
    file; TLS on both when ``config.tls_cert`` is set. ``on_ready(port, web)`` gets
    the gRPC port and the :class:`WebServer` (or None).
    """
    from skytwin.server.app import build_server, start, stop
    from skytwin.server.auth import Authenticator
    server, port = build_server(config)
    await start(server)
    web = None
    try:
        if web_port is not None:
            web = await start_web(server.skytwin_core, Authenticator.from_file(config.auth),
                                  web_host or config.host, web_port,
                                  tls_cert=config.tls_cert, tls_key=config.tls_key,
                                  hub=getattr(server, "skytwin_hub", None))
    except BaseException:
        await stop(server, 0)
        raise
    if on_ready is not None:
        on_ready(port, web)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, done.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    try:
        await done.wait()
    finally:
        log.info("stopping")
        if web is not None:
            await web.stop()
        await stop(server, config.grace_s)
