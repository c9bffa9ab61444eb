"""The gRPC service under fleet load, next to a trivial RPC on the same server.

    python benchmarks/bench_service.py [--drones 1000] [--concurrency 16 64]
                                       [--duration 30] [--trivial-s 8] [--operators 8]
                                       [--seed 0] [--json] [--out-json FILE]
                                       [--no-before] [--hubs 20] [--spread-s 3600]
                                       [--plan-processes 2] [--threads N]

For each concurrency level, in one run: a fresh server (``python -m skytwin.server serve`` in a
subprocess on a free loopback port, bundled Helsinki city, a temporary SQLite store and a
temporary token file with ``--operators`` operator tokens and one regulator; 4 planning
threads, the default, or ``--threads N``), then

1. the rate of two trivial RPCs driven by the load test's own client machinery
   (:func:`server.loadtest.run_trivial`: same channels, workers, instrumentation and
   concurrency): ``GetTwinInfo`` (authenticated, answered on the event loop) and the
   gRPC health ``Check`` (no interceptors' work beyond the pass-through);
2. the load test (:func:`server.loadtest.run_loadtest`) with ``--drones`` simulated
   drones for ``--duration`` seconds, with its post-run checks; each SubmitFlight books
   the PlanRoute preview by its ``plan_id`` (issue 14: plan once, book that plan);
3. unless ``--no-before``: on another fresh server, the same load test with the client
   of before issue 14 (SubmitFlight sends the route only, the server plans it again),
   reported under ``before`` in the same level, for the side-by-side comparison.

JSON (``--json``): one object; ``levels`` is a list, one entry per concurrency level in
the order given, each with ``concurrency``, ``plan_ok_per_s``, ``plan_p99_ms``,
``submit_ok_per_s``, ``submit_p99_ms``, ``checks`` (``"PASS"``/``"FAIL"``: every
post-run check of the load test passed), ``check_results`` (each check's verdict), the
full figures, and ``before`` (the same headline keys for the route-only client).
``cpu_per_submit_ok`` (:func:`cpu_budget`) splits the CPU of the load window per
SubmitFlight OK by process (server process, planning workers, client) and gives the
rates that CPU allows: the server process's one core (its Python holds one GIL) and
all the machine's cores; the sustained rate stays below both.

Reported: sustained PlanRoute and SubmitFlight rates (calls/s, and OK/s) with p50/p99,
their ratio to the trivial RPC's rate, and the CPU the server process and the client
used during each phase (``/proc/PID/stat`` and ``time.process_time``): client and server
share this machine's 2 cores (and, here, other jobs: the load average is printed).
The server is fresh for each level, so every level starts from an empty airspace.

Hubs (issue 14, RESULTS.md scale parts 8 and 11): every delivery takes off from one of
``--hubs`` hubs (default 20; up to 200, but the bundled Helsinki twin holds only ~50
points 150 m apart from which a preview succeeds, and the report gives the number found
as ``hubs``), departing uniformly within ``--spread-s`` (default 3600 s). A hub's pad
takes one departure per 10-20 s (Separation defaults, 4 m/s climb, 10 s delay steps),
about 300 per hour in the load test's pattern, so with 3 hubs (the load test's own
default, ``skytwin loadtest``) the SubmitFlight OK rate of a 30 s run is bounded near
35 bookings/s (plus replays) by the pads' take-off slots, not by the server: a run that
measures the server needs more pads than it books per 10 s, and a city booking 100
flights/s has hundreds of vertiports. The default was 3 until 2026-12-01 (RESULTS.md
scale part 11 gives both).

Planning processes (issue 14 part 2): ``--plan-processes P [P ...]`` (default 2) starts
the server with ``serve --plan-processes P`` (0: planning threads in the server
process); the first value is the headline run above, and each further value is one
more load test on a fresh server, all listed in ``by_plan_processes`` (e.g. ``0 1 2``
for threads vs one vs two worker processes). The CPU reported for the server includes
its planning workers; ``memory`` lists each process's resident, proportional and
unique memory (the workers' unique memory shows what the fork did not share).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skytwin.server.loadtest import LoadConfig, run_loadtest, run_trivial

_TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / _TICK   # utime + stime (fields 14, 15)


def _tokens(path: Path, operators: int) -> tuple[str, str]:
    lines = []
    for k in range(operators):
        lines += ["[[token]]", f'token = "bench-operator-{k}-NOT-SECRET"',
                  'role = "operator"', f'operator_id = "bench-op-{k}"', ""]
    lines += ["[[token]]", 'token = "bench-regulator-NOT-SECRET"', 'role = "regulator"', ""]
    path.write_text("\n".join(lines))
    return "bench-operator-0-NOT-SECRET", "bench-regulator-NOT-SECRET"


class Server:
    """``python -m skytwin.server serve`` on a free loopback port (killed on exit)."""

    def __init__(self, tmp: Path, tokens: Path, plan_processes: int = 0,
                 threads: int | None = None):
        self.port = _free_port()
        self.plan_processes = plan_processes
        extra = [] if threads is None else ["--workers", str(threads)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", "--port", str(self.port),
             "--db", str(tmp / "bench.db"), "--auth", str(tokens),
             "--plan-processes", str(plan_processes), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        t0 = time.perf_counter()
        for line in self.proc.stdout:
            if line.startswith("skytwin serving on"):
                break
        else:
            raise RuntimeError(f"server exited with {self.proc.wait()}")
        self.start_s = time.perf_counter() - t0
        self.target = f"127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server and its planning worker processes (children)."""
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            kids = ""
        return [self.proc.pid, *map(int, kids.split())]

    def cpu_s(self) -> float:
        """CPU of the server and of its planning workers [s]."""
        total = 0.0
        for pid in self.pids():
            try:
                total += _cpu_s(pid)
            except OSError:
                pass
        return total

    def memory(self) -> list[dict]:
        """Resident, proportional and unique memory [MB] of the server and each of its
        planning workers (``/proc/PID/smaps_rollup``): unique << resident in a worker
        means its twin pages are shared with the server (fork, copy-on-write)."""
        out = []
        for n, pid in enumerate(self.pids()):
            try:
                lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
            except OSError:
                continue
            kb = {p[0].rstrip(":"): int(p[1]) for p in (x.split() for x in lines)
                  if len(p) >= 2 and p[1].isdigit()}
            out.append({"process": "server" if n == 0 else f"worker {n}",
                        "rss_mb": round(kb.get("Rss", 0) / 1024, 1),
                        "pss_mb": round(kb.get("Pss", 0) / 1024, 1),
                        "unique_mb": round((kb.get("Private_Clean", 0) +
                                            kb.get("Private_Dirty", 0)) / 1024, 1)})
        return out

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _cores(a, b) -> dict:
    """Cores used between two :func:`_phase` samples ``(perf_counter, server + workers,
    server process, client)`` [s]."""
    wall = b[0] - a[0]
    return {"wall_s": round(wall, 2),
            "server_cores": round((b[1] - a[1]) / wall, 2),
            # the server process alone (event loop, booking pool: one GIL); the
            # rest of server_cores is its planning worker processes
            "server_main_cores": round((b[2] - a[2]) / wall, 2),
            "client_cores": round((b[3] - a[3]) / wall, 2)}


def _phase(server, fn):
    """Run ``fn`` and add ``cpu`` (cores used over the whole phase) to its result;
    when the result gives its load window (``window_perf_s``, the load test's), also
    ``cpu["load_window"]``: the cores used between the samples (taken every 0.25 s)
    nearest to the window's ends, without the set-up and checks around it."""
    def sample():
        return (time.perf_counter(), server.cpu_s(), _cpu_s(server.proc.pid),
                time.process_time())
    samples, done = [sample()], threading.Event()

    def sampler():
        while not done.wait(0.25):
            samples.append(sample())
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    try:
        out = fn()
    finally:
        done.set()
        th.join()
    samples.append(sample())
    out["cpu"] = _cores(samples[0], samples[-1])
    win = out.get("window_perf_s")
    if win:
        a = min(samples, key=lambda s: abs(s[0] - win[0]))
        b = min(samples, key=lambda s: abs(s[0] - win[1]))
        if b[0] > a[0]:
            out["cpu"]["load_window"] = _cores(a, b)
    return out


def _idle_probe(target, reg_tok) -> dict:
    """After the load: one CreateZone (and DeleteZone) on the idle server holding the
    fleet, and one GetTwinInfo, timed (the zone's affected-flight scan runs under the
    booking lock)."""
    import grpc

    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import airspace_pb2_grpc as arpc
    from skytwin.v1 import zones_pb2 as zpb
    from skytwin.v1 import zones_pb2_grpc as zrpc
    md = (("authorization", f"Bearer {reg_tok}"),)
    out = {}
    with grpc.insecure_channel(target) as ch:
        air, zones = arpc.AirspaceServiceStub(ch), zrpc.ZoneServiceStub(ch)
        info = air.GetTwinInfo(apb.GetTwinInfoRequest(), metadata=md)
        b = info.bounds
        lon, lat = 0.5 * (b.min_lon_deg + b.max_lon_deg), 0.5 * (b.min_lat_deg + b.max_lat_deg)
        agl = apb.ALTITUDE_REFERENCE_AGL
        z = zpb.Zone(id="bench-idle-zone", circle=zpb.Circle(
            centre=apb.LonLat(lon_deg=lon, lat_deg=lat), radius_m=100.0),
            lower=apb.Altitude(value_m=0, reference=agl),
            upper=apb.Altitude(value_m=500, reference=agl))
        t0 = time.perf_counter()
        r = zones.CreateZone(zpb.CreateZoneRequest(zone=z), metadata=md)
        out["create_zone_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        out["create_zone_affected"] = len(r.affected_flight_ids)
        t0 = time.perf_counter()
        zones.DeleteZone(zpb.DeleteZoneRequest(zone_id=z.id), metadata=md)
        out["delete_zone_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        t0 = time.perf_counter()
        air.GetTwinInfo(apb.GetTwinInfoRequest(), metadata=md)
        out["get_twin_info_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        out["accepted_flights"] = info.accepted_flight_count
    return out


def cpu_budget(cpu: dict, submit_ok_per_s: float, cores: int) -> dict | None:
    """CPU per SubmitFlight OK of a load phase, by process, and the rates it allows.

    ``cpu`` is :func:`_phase`'s (cores used over the phase's wall time). Per OK
    submit, in CPU milliseconds: the server process (``server_main``: event loop,
    booking threads, store; one GIL), its planning workers (``workers``), the load
    test's client (``client``) and their sum. ``gil_bound_per_s`` = 1000 /
    ``server_main`` is the rate at which the server process would need a whole core
    (it cannot use more, its Python holding one GIL); ``cpu_bound_per_s`` = ``cores``
    x 1000 / ``total`` the rate at which client and server together would need every
    core of this machine. The sustained rate cannot exceed the lower of the two at
    this CPU per call (the work per delivery cycle: a PlanRoute preview, about 0.8
    failed ones, the booking, replays, cancels and the Watch streams)."""
    if not submit_ok_per_s:
        return None
    main = cpu["server_main_cores"] * 1e3 / submit_ok_per_s
    workers = max(0.0, cpu["server_cores"] - cpu["server_main_cores"]) * 1e3 / submit_ok_per_s
    client = cpu["client_cores"] * 1e3 / submit_ok_per_s
    total = main + workers + client
    return {"server_main_ms": round(main, 2), "workers_ms": round(workers, 2),
            "client_ms": round(client, 2), "total_ms": round(total, 2),
            "gil_bound_per_s": round(1e3 / main, 1) if main else None,
            "cpu_bound_per_s": round(cores * 1e3 / total, 1) if total else None}


def _headline(plan, sub, ok, load=None) -> dict:
    hubs = {} if load is None else {"hubs": len(load["hubs"]),
                                    "hubs_setup_s": load.get("hubs_setup_s")}
    budget = {} if load is None else {"cpu_per_submit_ok": cpu_budget(
        load["cpu"].get("load_window", load["cpu"]), sub.get("ok_per_s", 0.0),
        os.cpu_count() or 1)}
    return {**hubs, "plan_ok_per_s": plan.get("ok_per_s", 0.0), "plan_p99_ms": plan.get("p99_ms"),
            "submit_ok_per_s": sub.get("ok_per_s", 0.0),
            "submit_calls_per_s": sub.get("calls_per_s", 0.0),
            "submit_p50_ms": sub.get("p50_ms"), "submit_p99_ms": sub.get("p99_ms"),
            "checks": "PASS" if ok else "FAIL", **budget}


def bench_processes(concurrency, processes, args, tmp: Path) -> dict:
    """The load test alone on a fresh server planning in ``processes`` worker
    processes (0: the server's threads), for the 1-vs-2 comparison."""
    tokens = tmp / "tokens.toml"
    _tokens(tokens, args.operators)
    server = Server(tmp, tokens, processes, args.threads)
    try:
        cfg = LoadConfig(target=server.target, drones=args.drones, concurrency=concurrency,
                         duration_s=args.duration, operators=args.operators, tokens=tokens,
                         seed=args.seed, hubs=args.hubs, spread_s=args.spread_s)
        load = _phase(server, lambda: run_loadtest(cfg))
        mem = server.memory()
    finally:
        server.close()
    r = load["rpcs"]
    plan = r.get("PlanRoute", {})
    return dict(_headline(plan, r.get("SubmitFlight", {}), load["ok"], load),
                plan_processes=processes, plan_calls_per_s=plan.get("calls_per_s"),
                plan_p50_ms=plan.get("p50_ms"),
                check_results={k: v["ok"] for k, v in load["checks"].items()},
                errors=load["errors_by_code"], flights=load["flights"],
                load_cpu=load["cpu"], memory=mem)


def bench_before(concurrency, args, tmp: Path) -> dict:
    """The load test on a fresh server with the route-only client (before issue 14)."""
    tokens = tmp / "tokens.toml"
    _tokens(tokens, args.operators)
    server = Server(tmp, tokens, args.plan_processes[0], args.threads)
    try:
        cfg = LoadConfig(target=server.target, drones=args.drones, concurrency=concurrency,
                         duration_s=args.duration, operators=args.operators, tokens=tokens,
                         seed=args.seed, hubs=args.hubs, spread_s=args.spread_s, book_plan=False)
        load = _phase(server, lambda: run_loadtest(cfg))
    finally:
        server.close()
    r = load["rpcs"]
    return dict(_headline(r.get("PlanRoute", {}), r.get("SubmitFlight", {}), load["ok"],
                          load),
                check_results={k: v["ok"] for k, v in load["checks"].items()},
                flights=load["flights"], load_cpu=load["cpu"])


def bench_level(concurrency, args, tmp: Path) -> dict:
    tokens = tmp / "tokens.toml"
    op_tok, reg_tok = _tokens(tokens, args.operators)
    server = Server(tmp, tokens, args.plan_processes[0], args.threads)
    try:
        info = _phase(server, lambda: run_trivial(server.target, concurrency,
                                                  args.trivial_s, op_tok, "GetTwinInfo"))
        health = _phase(server, lambda: run_trivial(server.target, concurrency,
                                                    args.trivial_s, op_tok, "Check"))
        cfg = LoadConfig(target=server.target, drones=args.drones, concurrency=concurrency,
                         duration_s=args.duration, operators=args.operators, tokens=tokens,
                         seed=args.seed, hubs=args.hubs, spread_s=args.spread_s)
        load = _phase(server, lambda: run_loadtest(cfg))
        mem = server.memory()
        idle = _idle_probe(server.target, reg_tok)
    finally:
        server.close()
    r = load["rpcs"]
    plan, sub = r.get("PlanRoute", {}), r.get("SubmitFlight", {})
    ceiling = info["ok_per_s"]
    return {
        "concurrency": concurrency, **_headline(plan, sub, load["ok"], load),
        "plan_processes": args.plan_processes[0], "memory": mem,
        "hub_lonlat": load["hubs"],
        "server_start_s": round(server.start_s, 2),
        "trivial": {"GetTwinInfo": info, "Check": health},
        "plan": plan, "submit": sub,
        "plan_ratio": round(plan.get("calls_per_s", 0) / ceiling, 5),
        "submit_ratio": round(sub.get("calls_per_s", 0) / ceiling, 5),
        "all_calls_per_s": round(load["requests"] / load["elapsed_s"], 2),
        "flights": load["flights"], "zone": load["zone"], "errors": load["errors_by_code"],
        "check_results": {k: v["ok"] for k, v in load["checks"].items()},
        "check_detail": {k: {kk: vv for kk, vv in v.items() if kk.endswith("_s") or
                             kk in ("flights", "accepted_before_the_zone")}
                         for k, v in load["checks"].items()},
        "rpcs": {k: {kk: vv for kk, vv in v.items() if kk != "error_samples"}
                 for k, v in r.items()},
        "check_rpcs": load["check_rpcs"], "idle": idle,
        "ok": load["ok"], "load_cpu": load["cpu"], "elapsed_s": load["elapsed_s"],
        "requests": load["requests"],
    }


def _row(d):
    p, s = d["plan"], d["submit"]
    i, h = d["trivial"]["GetTwinInfo"], d["trivial"]["Check"]
    return (f"| {d['concurrency']} | {i['ok_per_s']:.0f} (p50 {i['p50_ms']:.1f}, p99 "
            f"{i['p99_ms']:.1f}) | {h['ok_per_s']:.0f} | "
            f"{p['calls_per_s']:.1f} / {p['ok_per_s']:.1f} | {p['p50_ms']:.0f} | "
            f"{p['p99_ms']:.0f} | {s['calls_per_s']:.1f} / {s['ok_per_s']:.1f} | "
            f"{s['p50_ms']:.0f} | {s['p99_ms']:.0f} | {d['plan_ratio']:.4f} | "
            f"{d['submit_ratio']:.4f} | {d['load_cpu']['server_cores']:.2f} / "
            f"{d['load_cpu']['client_cores']:.2f} | {'PASS' if d['ok'] else 'FAIL'} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drones", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--trivial-s", type=float, default=8.0)
    ap.add_argument("--operators", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--out-json", default=None, help="also write the JSON object here")
    ap.add_argument("--no-before", action="store_true",
                    help="skip the route-only (before issue 14) run of each level")
    ap.add_argument("--threads", type=int, default=None,
                    help="the server's planning threads (serve --workers; "
                         "default: serve's own)")
    ap.add_argument("--hubs", type=int, default=20,
                    help="delivery hubs of the load test (LoadConfig.hubs, 1..200; every "
                         "delivery takes off from one: their take-off slots bound the "
                         "bookings, see RESULTS.md scale part 8)")
    ap.add_argument("--spread-s", type=float, default=3600.0,
                    help="departures uniform within this window after now + 60 s "
                         "(LoadConfig.spread_s)")
    ap.add_argument("--plan-processes", type=int, nargs="+", default=[2], metavar="P",
                    help="planning worker processes of the server (serve "
                         "--plan-processes; 0: threads); the first is the headline run, "
                         "each other one a load test of its own (by_plan_processes)")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    out = []
    for c in args.concurrency:
        with tempfile.TemporaryDirectory() as tmp:
            out.append(bench_level(c, args, Path(tmp)))
        if not args.no_before:
            with tempfile.TemporaryDirectory() as tmp:
                out[-1]["before"] = bench_before(c, args, Path(tmp))
        out[-1]["by_plan_processes"] = [{
            k: out[-1][k] for k in ("hubs", "plan_processes", "plan_ok_per_s", "plan_p99_ms",
                                    "submit_ok_per_s", "submit_p99_ms", "checks")}]
        out[-1]["by_plan_processes"][0].update(
            plan_calls_per_s=out[-1]["plan"].get("calls_per_s"),
            plan_p50_ms=out[-1]["plan"].get("p50_ms"), load_cpu=out[-1]["load_cpu"],
            submit_calls_per_s=out[-1]["submit_calls_per_s"], errors=out[-1]["errors"],
            flights=out[-1]["flights"])
        for pp in args.plan_processes[1:]:
            with tempfile.TemporaryDirectory() as tmp:
                out[-1]["by_plan_processes"].append(bench_processes(c, pp, args,
                                                                    Path(tmp)))
        if not args.json:
            print(f"concurrency {c} done: {json.dumps(out[-1]['check_results'])}",
                  file=sys.stderr)
    res = {"drones": args.drones, "duration_s": args.duration, "operators": args.operators,
           "hubs_requested": args.hubs, "spread_s": args.spread_s,
           "cores": os.cpu_count(), "loadavg_before": load0, "loadavg_after":
           os.getloadavg(), "levels": out}
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(res, default=str, indent=1))
    if args.json:
        print(json.dumps(res, default=str))
    else:
        print("| concurrency | GetTwinInfo/s | Check/s | PlanRoute calls/s / OK/s | p50 ms | "
              "p99 ms | SubmitFlight calls/s / OK/s | p50 ms | p99 ms | plan/trivial | "
              "submit/trivial | server/client cores | checks |")
        print("|" + "---|" * 13)
        for d in out:
            print(_row(d))
        print(f"\nload average before {load0}, after {os.getloadavg()}; "
              f"{os.cpu_count()} cores shared by client and server")
        for d in out:
            print(f"c={d['concurrency']}: flights {d['flights']['booked']} booked, "
                  f"{d['flights']['cancelled']} cancelled; errors {d['errors']}; zone "
                  f"affected {d['zone'].get('affected_count')}; checks {d['check_detail']}")
            b = d.get("cpu_per_submit_ok")
            if b:
                print(f"c={d['concurrency']}: CPU per SubmitFlight OK (load window): server "
                      f"process {b['server_main_ms']} ms, planning workers "
                      f"{b['workers_ms']} ms, client {b['client_ms']} ms, total "
                      f"{b['total_ms']} ms; at this CPU per call the server process's "
                      f"one core allows {b['gil_bound_per_s']}/s, the machine's cores "
                      f"{b['cpu_bound_per_s']}/s")
            for name, t in d["trivial"].items():
                print(f"c={d['concurrency']}: trivial {name}: {t['ok_per_s']:.0f}/s, p50 "
                      f"{t['p50_ms']:.2f} ms, p99 {t['p99_ms']:.2f} ms, cores server/client "
                      f"{t['cpu']['server_cores']:.2f}/{t['cpu']['client_cores']:.2f}")
        print("\n| concurrency | plan processes | PlanRoute calls/s | OK/s | p50 ms | p99 ms "
              "| SubmitFlight OK/s | p99 ms | server+workers cores | checks |")
        print("|" + "---|" * 10)
        for d in out:
            for b in d["by_plan_processes"]:
                print(f"| {d['concurrency']} | {b['plan_processes']} | "
                      f"{b['plan_calls_per_s']} | {b['plan_ok_per_s']} | {b['plan_p50_ms']} "
                      f"| {b['plan_p99_ms']} | {b['submit_ok_per_s']} | {b['submit_p99_ms']} "
                      f"| {b['load_cpu']['server_cores']} | {b['checks']} |")
            print(f"c={d['concurrency']}: memory {d['memory']}")
        for d in out:
            b = d.get("before")
            if b:
                print(f"c={d['concurrency']}: SubmitFlight OK/s {d['submit_ok_per_s']:.1f} "
                      f"(p99 {d['submit_p99_ms']:.0f} ms) booking the plan_id vs "
                      f"{b['submit_ok_per_s']:.1f} (p99 {b['submit_p99_ms']:.0f} ms) route "
                      f"only; PlanRoute OK/s {d['plan_ok_per_s']:.1f} vs "
                      f"{b['plan_ok_per_s']:.1f}; checks {d['checks']} / {b['checks']}")
    return 0 if all(d["ok"] for d in out) else 1


if __name__ == "__main__":
    sys.exit(main())
