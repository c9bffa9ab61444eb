"""Issue 9's abuse cases against a fresh server: status, time, server memory.

    python benchmarks/bench_abuse.py [--abuse-s 15] [--json]

Starts ``python -m skytwin.server serve`` exactly as a user would (no options besides a
free loopback port and a temporary store: the bundled Helsinki city and the development
tokens are the defaults), waits for health SERVING, then:

1. runs every case of issue 9's "Why" list once, in order, and prints one row per case:
   the status code, the wall time of the call (ms) and the server's resident memory
   (``VmRSS`` of the server process, MB) right after it;
2. replays the whole list from three client threads at once for ``--abuse-s`` seconds
   while another operator books flights one after the other, and prints that
   operator's booking waits (without abuse first, as the baseline, then under abuse);
3. prints the server's RSS after everything, next to the documented cap
   (``rss_cap_mb`` in fixtures/limits/default_limits.json), and an in-process A/B of
   the planner's kept search workspace after a low-ceiling request across the twin
   (the old policy, "keep the largest workspace forever", against the current cap).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skytwin.server.convert import timestamp  # noqa: E402
from skytwin.server.limits import load_limits  # noqa: E402
from skytwin.v1 import airspace_pb2 as apb  # noqa: E402
from skytwin.v1 import airspace_pb2_grpc as arpc  # noqa: E402
from skytwin.v1 import flights_pb2 as fpb  # noqa: E402
from skytwin.v1 import flights_pb2_grpc as frpc  # noqa: E402
from skytwin.v1 import zones_pb2 as zpb  # noqa: E402
from skytwin.v1 import zones_pb2_grpc as zrpc  # noqa: E402

OP_A = "dev-operator-a-NOT-SECRET"
OP_B = "dev-operator-b-NOT-SECRET"
REG = "dev-regulator-NOT-SECRET"
FROM, TO, NEAR = (24.94030, 60.17150), (24.95240, 60.16760), (24.94300, 60.17100)
AGL, AMSL = apb.ALTITUDE_REFERENCE_AGL, apb.ALTITUDE_REFERENCE_AMSL
MB = "x" * (1 << 20)


def _md(tok):
    return (("authorization", f"Bearer {tok}"),)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process [MB] (``VmHWM``: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ll(p):
    return apb.LonLat(lon_deg=p[0], lat_deg=p[1])


def _route(a=FROM, b=TO, depart_s=None, **kw):
    r = fpb.RouteRequest(start=_ll(a), goal=_ll(b), **kw)
    if depart_s is not None:
        r.departure_time.CopyFrom(timestamp(depart_s))
    return r


def _zone(zid, centre, radius_m, lo=(0.0, AGL), hi=(200.0, AGL), **kw):
    return zpb.Zone(id=zid, circle=zpb.Circle(centre=_ll(centre), radius_m=radius_m),
                    lower=apb.Altitude(value_m=lo[0], reference=lo[1]),
                    upper=apb.Altitude(value_m=hi[0], reference=hi[1]), **kw)


def cases(bounds, now_s):
    """``[(name, rpc, request, token)]``: issue 9's "Why" list, in its order."""
    small = apb.LonLatBox(min_lon_deg=24.9400, min_lat_deg=60.1690, max_lon_deg=24.9420,
                          max_lat_deg=60.1700)
    whole = apb.LonLatBox(min_lon_deg=bounds[0], min_lat_deg=bounds[1],
                          max_lon_deg=bounds[2], max_lat_deg=bounds[3])
    corner_a = (bounds[0] + 0.001, bounds[1] + 0.001)
    corner_b = (bounds[2] - 0.001, bounds[3] - 0.001)
    t0 = now_s + 3 * 3600
    return [
        ("cruise 1e-6 m/s (25-year flight)", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id="slow-6", route=_route(depart_s=t0, cruise_speed_mps=1e-6)), OP_A),
        ("cruise 1e-9 m/s", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id="slow-9", route=_route(depart_s=t0, cruise_speed_mps=1e-9)), OP_A),
        ("departure 30 years ahead", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id="far", route=_route(depart_s=now_s + 30 * 365.25 * 86400)), OP_A),
        ("departure in year 9999", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id="y9999", route=_route(depart_s=253402300799.0)), OP_A),
        ("QueryBlockedCodes clearance 1e6 m", "QueryBlockedCodes",
         apb.QueryBlockedCodesRequest(box=small, z_lo_amsl_m=0, z_hi_amsl_m=120,
                                      clearance_m=1e6), OP_A),
        ("QueryBlockedCodes whole twin, 20 m", "QueryBlockedCodes",
         apb.QueryBlockedCodesRequest(box=whole, z_lo_amsl_m=0, z_hi_amsl_m=120,
                                      clearance_m=20), OP_A),
        ("ED-269 nested 100,000 deep", "ImportEd269", zpb.ImportEd269Request(
            ed269_json="[" * 100_000 + "]" * 100_000), REG),
        ("request_id of 1 MB", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id=MB, route=_route(depart_s=t0)), OP_A),
        ("zone id of 1 MB", "CreateZone", zpb.CreateZoneRequest(zone=_zone(MB, NEAR, 20)),
         REG),
        ("zone reason of 1 MB", "CreateZone", zpb.CreateZoneRequest(
            zone=_zone("Z-R", NEAR, 20, reason=MB)), REG),
        ("flight_id of 1 MB (GetFlight)", "GetFlight", fpb.GetFlightRequest(flight_id=MB),
         OP_A),
        ("zone 100 m AGL .. 5 m AMSL", "CreateZone", zpb.CreateZoneRequest(
            zone=_zone("Z-BAND", NEAR, 30, lo=(100, AGL), hi=(5, AMSL))), REG),
        ("circle radius 1e300 m", "CreateZone", zpb.CreateZoneRequest(
            zone=_zone("Z-HUGE", NEAR, 1e300)), REG),
        ("request id reused: first booking", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id="same-key", route=_route(depart_s=t0 + 5000)), OP_A),
        ("request id reused, other route", "SubmitFlight", fpb.SubmitFlightRequest(
            request_id="same-key", route=_route(a=NEAR, depart_s=t0 + 5000)), OP_A),
        ("page_size -5", "ListFlights", fpb.ListFlightsRequest(page_size=-5), OP_A),
        ("low ceiling (12 m) across the twin", "PlanRoute", fpb.PlanRouteRequest(
            route=_route(corner_a, corner_b, ceiling_agl_m=12.0, min_agl_m=10.0)), OP_A),
        ("low ceiling (14 m) across the twin", "PlanRoute", fpb.PlanRouteRequest(
            route=_route(corner_a, corner_b, ceiling_agl_m=14.0, min_agl_m=10.0)), OP_A),
    ]


class Client:
    def __init__(self, target):
        self.ch = grpc.insecure_channel(target)
        self.stubs = {"a": arpc.AirspaceServiceStub(self.ch),
                      "z": zrpc.ZoneServiceStub(self.ch),
                      "f": frpc.FlightServiceStub(self.ch)}

    def rpc(self, name):
        for s in self.stubs.values():
            if hasattr(s, name):
                return getattr(s, name)
        raise KeyError(name)

    def call(self, name, req, tok, timeout=120):
        t = time.perf_counter()
        try:
            self.rpc(name)(req, metadata=_md(tok), timeout=timeout)
            code, details = "OK", ""
        except grpc.RpcError as e:
            code, details = e.code().name, e.details() or ""
        return code, details, 1e3 * (time.perf_counter() - t)


def _book_waits(cl, n, tag, depart0):
    waits, codes = [], []
    for k in range(n):
        code, details, ms = cl.call("SubmitFlight", fpb.SubmitFlightRequest(
            request_id=f"{tag}-{k}", route=_route(FROM, NEAR, depart_s=depart0 + 600 * k)),
            OP_B)
        waits.append(ms)
        codes.append(code)
    return waits, codes


def workspace_ab():
    """Kept workspace bytes after a low-ceiling request: keep-forever vs the cap."""
    from skytwin.planner.route import Planner, RouteRequest
    from skytwin.server.app import ServerConfig, load_twin
    twin, _ = load_twin(ServerConfig())
    b = twin.bounds_wgs84()
    a, z = (b[0] + 0.001, b[1] + 0.001), (b[2] - 0.001, b[3] - 0.001)
    out = {}
    for name, keep in (("keep forever (before)", 10**12),
                       ("kept <= 4.5 M voxels (now)", load_limits().keep_workspace_voxels)):
        p = Planner(twin, keep_workspace_voxels=keep)
        try:
            p.plan(RouteRequest(a, z, depart_s=time.time(), ceiling_agl_m=12.0,
                                min_agl_m=10.0))
        except Exception as exc:   # noqa: BLE001 - the memory is what is measured
            print("  (plan:", type(exc).__name__, ")")
        out[name] = p.workspace_bytes() / 2**20
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abuse-s", type=float, default=15.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    lim = load_limits()
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="bench-abuse-")
    cmd = [sys.executable, "-m", "skytwin.server", "serve", "--port", str(port),
           "--db", str(Path(tmp) / "store.db")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target = f"127.0.0.1:{port}"
    try:
        t_start = time.perf_counter()
        with grpc.insecure_channel(target) as ch:
            h = health_pb2_grpc.HealthStub(ch)
            while True:
                try:
                    if h.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        break
                except grpc.RpcError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        print(f"server: {' '.join(cmd[1:])}  (ready in {time.perf_counter() - t_start:.1f} s, "
              f"RSS {_rss_mb(proc.pid):.0f} MB)")
        cl = Client(target)
        info = cl.stubs["a"].GetTwinInfo(apb.GetTwinInfoRequest(), metadata=_md(OP_A))
        b = (info.bounds.min_lon_deg, info.bounds.min_lat_deg, info.bounds.max_lon_deg,
             info.bounds.max_lat_deg)
        now = time.time()
        rows = []
        print("\n| case | RPC | status | time ms | server RSS MB |\n|---|---|---|---:|---:|")
        for name, rpc, req, tok in cases(b, now):
            code, details, ms = cl.call(rpc, req, tok)
            rss = _rss_mb(proc.pid)
            rows.append({"case": name, "rpc": rpc, "status": code, "ms": round(ms, 1),
                         "rss_mb": round(rss), "message": details[:120]})
            print(f"| {name} | {rpc} | {code} | {ms:.1f} | {rss:.0f} |")
        print("\nmessages:")
        for r in rows:
            if r["message"]:
                print(f"  {r['case']}: {r['message']}")
        # baseline: the other operator's bookings with nothing else running
        base, base_codes = _book_waits(cl, 8, "calm", now + 4 * 3600)
        # under abuse: every case from three threads, over and over
        stop = threading.Event()
        abuse_calls = [0]

        def abuse(k):
            c2 = Client(target)
            n = 0
            while not stop.is_set():
                for name, rpc, req, tok in cases(b, time.time()):
                    if stop.is_set():
                        break
                    if rpc == "SubmitFlight" and req.request_id == "same-key":
                        continue
                    c2.call(rpc, req, tok)
                    n += 1
            abuse_calls[0] += n

        threads = [threading.Thread(target=abuse, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        t_ab = time.perf_counter()
        under, under_codes = [], []
        r = 0
        while time.perf_counter() - t_ab < args.abuse_s:
            w, c = _book_waits(cl, 4, f"busy{r}", now + (5 + r) * 3600)
            under += w
            under_codes += c
            r += 1
        stop.set()
        for t in threads:
            t.join()
        ab_s = time.perf_counter() - t_ab
        rss_end = _rss_mb(proc.pid)
        rss_peak = _rss_mb(proc.pid, "VmHWM")
        alive_code, _, alive_ms = cl.call("PlanRoute", fpb.PlanRouteRequest(
            route=_route(FROM, NEAR)), OP_A)
        print(f"\nother operator's SubmitFlight (FROM->NEAR), {len(base)} alone: "
              f"p50 {statistics.median(base):.0f} ms, max {max(base):.0f} ms "
              f"({base_codes.count('OK')} OK)")
        print(f"same, {len(under)} while 3 threads replay every case ({abuse_calls[0]} "
              f"abusive calls in {ab_s:.1f} s): p50 {statistics.median(under):.0f} ms, "
              f"max {max(under):.0f} ms ({under_codes.count('OK')} OK, others: "
              f"{sorted(set(under_codes) - {'OK'})})")
        print(f"server RSS after everything: {rss_end:.0f} MB, peak {rss_peak:.0f} MB "
              f"(documented cap {lim.rss_cap_mb:.0f} MB); PlanRoute afterwards: "
              f"{alive_code} in {alive_ms:.0f} ms")
        ab = workspace_ab()
        print("planner kept workspace after a 12 m-ceiling request across the twin "
              "(in-process A/B): " + ", ".join(f"{k}: {v:.0f} MB" for k, v in ab.items()))
        if args.json:
            print(json.dumps({"rows": rows, "baseline_ms": base, "under_abuse_ms": under,
                              "rss_end_mb": rss_end, "rss_peak_mb": rss_peak,
                              "workspace_mb": ab}))
        ok = rss_peak <= lim.rss_cap_mb and alive_code == "OK"
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
