"""The web map speaks TLS with the gRPC side's certificate (and then only TLS)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from skytwin.server.auth import DEV_TOKENS, Authenticator
from skytwin.server.web.app import start_web
from tests.grpc_fixtures import start_server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def test_web_map_over_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    srv = start_server(tmp_path / "s.db", tls_cert=cert, tls_key=key, warm_up=False)
    web = asyncio.run_coroutine_threadsafe(
        start_web(srv.core, Authenticator.from_file(DEV_TOKENS), tls_cert=cert,
                  tls_key=key), srv.loop).result(30)
    try:
        assert web.url.startswith("https://127.0.0.1:")
        ctx = ssl.create_default_context(cafile=str(cert))
        req = urllib.request.Request(web.url + "api/session", headers={
            "Authorization": "Bearer dev-regulator-NOT-SECRET"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            assert r.status == 200 and b"regulator" in r.read()
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(web.url.replace("https:", "http:"), timeout=5).read()
    finally:
        asyncio.run_coroutine_threadsafe(web.stop(), srv.loop).result(30)
        srv.stop()
