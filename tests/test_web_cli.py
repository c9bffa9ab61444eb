"""``skytwin serve`` starts the web map beside gRPC and prints its URL on one line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request


def test_serve_prints_the_map_url_and_serves_the_page(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "skytwin.server.cli", "serve", "--port", "0",
                          "--web", "0", "--db", str(tmp_path / "s.db")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        end = time.monotonic() + 120
        while url is None and time.monotonic() < end:
            line = p.stdout.readline()
            if not line:
                break
            m = re.fullmatch(r"map: (http://127\.0\.0\.1:\d+/)\n", line)
            url = m.group(1) if m else None
        assert url, "no 'map: URL' line"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200 and b"SkyTwin airspace map" in r.read()
        # the same process answers gRPC and HTTP: the map's API knows the dev tokens
        req = urllib.request.Request(url + "api/session", headers={
            "Authorization": "Bearer dev-operator-a-NOT-SECRET"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert b'"op-a"' in r.read()
    finally:
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
