"""`skytwin serve` as a child process, for tests that need a real process (SIGKILL,
restart, command-line flags).

The child's stdout is read until it prints ``serving on HOST:PORT``, then drained by a
daemon thread for the rest of its life: a child that writes to a pipe nobody reads
blocks once the pipe's 64 KiB buffer is full, which shows up as a server that stops
answering under load.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVING = re.compile(r"serving on ([\d.]+):(\d+)")


def start_serve(*args: str, timeout_s: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start ``skytwin serve --port 0 ARGS...``; return the process and its gRPC target.

    Raises RuntimeError (after killing the child) when it exits or does not print its
    address within ``timeout_s``.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "skytwin.server.cli", "serve", "--port", "0",
                          *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        m = SERVING.search(line)
        if m:
            threading.Thread(target=p.stdout.read, daemon=True).start()
            return p, f"{m.group(1)}:{m.group(2)}"
    p.kill()
    p.wait(10)
    raise RuntimeError(f"skytwin serve {' '.join(args)} did not start")


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Kill every child still running and reap it."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
