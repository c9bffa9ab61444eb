"""Several SkyTwin instances on one PostgreSQL database under the fleet load test.

    python benchmarks/bench_pg_instances.py [--drones 1000] [--concurrency 16]
                                            [--duration 30] [--instances 1 2] [--json]

A throw-away PostgreSQL server (Debian's package, ``tests/pg_server.py``), then for each
instance count N, on a fresh database: N ``python -m skytwin.server serve --db
postgresql://...`` processes (bundled Helsinki city, 4 planning threads each, the
development token file with 8 extra operators as in bench_service), and the load test
(:func:`server.loadtest.run_loadtest`) with its target list spread over the N instances
(workers alternate between them; a regulator watches on every instance and must see
every booking; the post-run checks, e.g. ``conflict_free`` by ``planner.verify`` over all
accepted flights, run through the API). Reported per N: PlanRoute and SubmitFlight OK/s
and p99, the checks, and the CPU of the servers and of PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_service import _cpu_s, _free_port, _tokens  # noqa: E402
from skytwin.server.loadtest import LoadConfig, run_loadtest  # noqa: E402
from tests.pg_server import start_postgres  # noqa: E402


def _pg_cpu_s() -> float:
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += _cpu_s(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return total


def _serve(dsn, tokens):
    port = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", str(port),
                          "--db", dsn, "--auth", str(tokens), "--web", "off"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("skytwin serving on"):
            return p, f"127.0.0.1:{port}"
    raise RuntimeError(f"server exited with {p.wait()}")


def bench(n, pg, args, tmp: Path) -> dict:
    tokens = tmp / "tokens.toml"
    _tokens(tokens, args.operators)
    dsn = pg.new_database("b_" + uuid.uuid4().hex[:8])
    procs = []
    try:
        for _ in range(n):
            procs.append(_serve(dsn, tokens))
        target = ",".join(t for _, t in procs)
        cfg = LoadConfig(target=target, drones=args.drones, concurrency=args.concurrency,
                         duration_s=args.duration, operators=args.operators,
                         tokens=tokens, seed=args.seed)
        c0 = [_cpu_s(p.pid) for p, _ in procs]
        g0, w0 = _pg_cpu_s(), time.perf_counter()
        rep = run_loadtest(cfg)
        wall = time.perf_counter() - w0
        cores = [round((_cpu_s(p.pid) - c) / wall, 2) for (p, _), c in zip(procs, c0,
                                                                            strict=True)]
        pg_cores = round((_pg_cpu_s() - g0) / wall, 2)
    finally:
        for p, _ in procs:
            p.terminate()
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    plan, sub = rep["rpcs"].get("PlanRoute", {}), rep["rpcs"].get("SubmitFlight", {})
    return {"instances": n, "plan_ok_per_s": plan.get("ok_per_s"),
            "plan_p99_ms": plan.get("p99_ms"), "submit_ok_per_s": sub.get("ok_per_s"),
            "submit_p99_ms": sub.get("p99_ms"),
            "checks": "PASS" if rep["ok"] else "FAIL",
            "check_results": {k: v["ok"] for k, v in rep["checks"].items()},
            "conflict_free": rep["checks"]["conflict_free"],
            "watch": rep["checks"]["watch"], "flights": rep["flights"],
            "errors": rep["errors_by_code"], "server_cores": cores, "postgres_cores": pg_cores}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drones", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--operators", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    pg = start_postgres()
    load0 = os.getloadavg()
    out = []
    try:
        for n in args.instances:
            with tempfile.TemporaryDirectory() as tmp:
                out.append(bench(n, pg, args, Path(tmp)))
    finally:
        pg.stop()
    res = {"drones": args.drones, "concurrency": args.concurrency,
           "duration_s": args.duration, "cores": os.cpu_count(),
           "loadavg_before": load0, "loadavg_after": os.getloadavg(), "levels": out}
    if args.json:
        print(json.dumps(res, default=str))
    else:
        print("| instances | PlanRoute OK/s | p99 ms | SubmitFlight OK/s | p99 ms | "
              "server cores | PostgreSQL cores | flights booked | checks |")
        print("|" + "---|" * 9)
        for d in out:
            print(f"| {d['instances']} | {d['plan_ok_per_s']} | {d['plan_p99_ms']:.0f} | "
                  f"{d['submit_ok_per_s']} | {d['submit_p99_ms']:.0f} | "
                  f"{' + '.join(map(str, d['server_cores']))} | {d['postgres_cores']} | "
                  f"{d['flights']['booked']} | {d['checks']} |")
        print(f"\nload average before {load0}, after {os.getloadavg()}")
        for d in out:
            print(f"instances {d['instances']}: checks {d['check_results']}; conflict_free "
                  f"{d['conflict_free']}; errors {d['errors']}")
    return 0 if all(d["checks"] == "PASS" for d in out) else 1


if __name__ == "__main__":
    sys.exit(main())
