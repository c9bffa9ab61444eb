"""TLS: with certificate paths the server speaks TLS only (self-signed test cert)."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import pytest

from skytwin.v1 import airspace_pb2 as apb
from skytwin.v1 import airspace_pb2_grpc as arpc
from tests.grpc_fixtures import OP_A, md, start_server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def test_tls_server(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    srv = start_server(tmp_path / "s.db", tls_cert=cert, tls_key=key, warm_up=False)
    try:
        creds = grpc.ssl_channel_credentials(cert.read_bytes())
        with grpc.secure_channel(f"localhost:{srv.port}", creds) as ch:
            r = arpc.AirspaceServiceStub(ch).GetTwinInfo(apb.GetTwinInfoRequest(),
                                                         metadata=md(OP_A), timeout=10)
            assert r.building_count > 0
        with grpc.insecure_channel(srv.target) as ch:     # plaintext is refused
            with pytest.raises(grpc.RpcError) as e:
                arpc.AirspaceServiceStub(ch).GetTwinInfo(apb.GetTwinInfoRequest(),
                                                         metadata=md(OP_A), timeout=5)
            assert e.value.code() in (grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        srv.stop()
