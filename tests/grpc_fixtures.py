"""A real SkyTwin gRPC server on an OS-chosen port, for the transport tests.

The server runs on its own event loop in a background thread; tests talk to it with
ordinary synchronous channels and stubs (so the tests themselves stay plain functions).
The twin of the bundled small city is built once per process (``helsinki_twin``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from dataclasses import dataclass

import grpc

from skytwin.server.auth import DEV_TOKENS

__all__ = ["OP_A", "OP_B", "REG", "RunningServer", "helsinki_twin", "md", "start_server"]

OP_A = "dev-operator-a-NOT-SECRET"
OP_B = "dev-operator-b-NOT-SECRET"
REG = "dev-regulator-NOT-SECRET"


def md(token):
    """Call metadata for a token."""
    return (("authorization", f"Bearer {token}"),)


@functools.lru_cache(maxsize=1)
def helsinki_twin():
    from skytwin.server.app import ServerConfig, load_twin
    return load_twin(ServerConfig())


@dataclass
class RunningServer:
    port: int
    core: object
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    server: object

    @property
    def target(self):
        return f"127.0.0.1:{self.port}"

    def channel(self):
        return grpc.insecure_channel(self.target)

    def stop(self):
        from skytwin.server.app import stop
        fut = asyncio.run_coroutine_threadsafe(stop(self.server, 0.5), self.loop)
        fut.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def start_server(db_path, **overrides) -> RunningServer:
    from skytwin.server.app import ServerConfig, build_server, start
    twin, ref = helsinki_twin()
    cfg = ServerConfig(db=db_path, auth=DEV_TOKENS, port=0, **{"workers": 2, **overrides})
    loop = asyncio.new_event_loop()
    ready = {}

    async def boot():
        server, port = build_server(cfg, twin=twin, twin_ref=ref)
        await start(server)
        ready.update(server=server, port=port)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_forever()

    th = threading.Thread(target=run, daemon=True, name="grpc-test-server")
    th.start()
    asyncio.run_coroutine_threadsafe(boot(), loop).result(120)
    return RunningServer(ready["port"], ready["server"].skytwin_core, loop, th,
                         ready["server"])
