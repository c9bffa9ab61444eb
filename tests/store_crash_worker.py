"""Subprocess for the crash test of the store (tests/test_store.py, SIGKILL).

    python tests/store_crash_worker.py DB RUN [N_MAX [THREADS]]
    python tests/store_crash_worker.py --bench DIR [N]     (throughput, see bench())

Opens the store at ``DB`` and books flights ``make_record(RUN, i)`` for
``i = 0, 1, ...`` until ``N_MAX`` (default or 0: forever), from ``THREADS`` threads
(default 1; thread ``k`` books ``i = k, k + THREADS, ...``, so concurrent writes are
group-committed), mixing single adds, small batches, cancellations and zone writes.
Each line is printed (and flushed) only AFTER the call that it acknowledges returned,
exactly as the service acknowledges a booking only after the store returned:

    A <i> <flight_id>         flight i is stored (single add or one of a batch)
    C <flight_id> <now_s>     that flight is cancelled
    Z <zone_id>               that zone is stored

The parent SIGKILLs this process at a random moment and checks that every acknowledged
write is present and intact. Records are a pure function of ``(RUN, i)`` so that the
parent can rebuild what each stored row must equal.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skytwin.airspace.zones import Altitude, Circle, Zone
from skytwin.planner.trajectory import Trajectory
from skytwin.server.store import FlightRecord, Store

__all__ = ["bench", "flight_id", "main", "make_record", "make_zone"]

T0_S = 1_790_000_000.0  # a fixed Unix time (2026-09-21)


def flight_id(run: int, i: int) -> str:
    """The flight id of record ``i`` of run ``run``."""
    return f"F-{run:03d}{i:09d}"


def make_record(run: int, i: int) -> FlightRecord:
    """A deterministic, awkward flight record: random length 2..64, full-precision
    floats, negative zeros, a subnormal, metadata of several JSON types."""
    rng = np.random.default_rng([run, i])
    n = int(rng.integers(2, 65))
    xyz = rng.normal(0.0, 3000.0, (n, 3))
    xyz[0, 2] = -0.0
    if n > 2:
        xyz[1, 0] = 5e-324  # smallest subnormal survives the round trip
    t = T0_S + i + np.concatenate(([0.0], np.cumsum(rng.uniform(0.0, 30.0, n - 1))))
    lonlat = np.column_stack((rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)))
    amsl = rng.uniform(-10.0, 400.0, n)
    agl = amsl - rng.uniform(0.0, 50.0, n)
    fid = flight_id(run, i)
    traj = Trajectory(
        fid,
        xyz,
        t,
        priority=float(rng.uniform(0.5, 3.0)),
        max_delay_s=float(rng.integers(0, 900)),
        meta={"layer": int(rng.integers(0, 4))},
    )
    return FlightRecord(
        flight_id=fid,
        operator_id=f"op-{i % 5}",
        request_id=f"req-{run}-{i}",
        status="accepted",
        trajectory=traj,
        lonlat_deg=lonlat,
        alt_amsl_m=amsl,
        alt_agl_m=agl,
        priority=traj.priority,
        created_s=T0_S + i / 7.0,
        meta={
            "run": run,
            "i": i,
            "delay_s": float(rng.uniform(0, 60)),
            "start": [float(lonlat[0, 0]), float(lonlat[0, 1])],
            "note": "é✓",
        },
    )


def make_zone(run: int, k: int) -> Zone:
    """A deterministic circular zone."""
    rng = np.random.default_rng([run, k, 7])
    return Zone(
        id=f"Z-{run}-{k}",
        circle=Circle(
            float(rng.uniform(-10, 10)),
            float(rng.uniform(40, 60)),
            float(rng.uniform(10, 500)),
        ),
        lower=Altitude(0.0, "AGL"),
        upper=Altitude(float(rng.uniform(60, 120)), "AGL"),
        window=(T0_S, T0_S + float(rng.uniform(60, 7200))),
        reason="event",
    )


def _book(store, run, k, n_threads, n_max, out, lock):
    """Thread ``k`` of ``n_threads``: books indices ``k, k + n_threads, ...``."""
    rng = np.random.default_rng([run, 99, k])
    mine: list[int] = []  # indices this thread has booked

    def ack(line):
        with lock:
            out.write(line)
            out.flush()

    i = k
    while n_max is None or i < n_max:
        u = rng.random()
        if u < 0.15:  # a batch of 2-5
            idx = [i + j * n_threads for j in range(int(rng.integers(2, 6)))]
            got = store.add_flights([make_record(run, x) for x in idx])
            ack(
                "".join(f"A {x} {r.flight_id}\n" for x, r in zip(idx, got, strict=True))
            )
        else:
            idx = [i]
            rec = store.add_flight(make_record(run, i))
            ack(f"A {i} {rec.flight_id}\n")
        mine += idx
        i = idx[-1] + n_threads
        if u > 0.9:  # cancel an earlier flight of this thread
            fid = flight_id(run, mine[int(rng.integers(0, len(mine)))])
            now_s = T0_S + 10_000.0 + i
            store.cancel_flight(fid, now_s)
            ack(f"C {fid} {now_s!r}\n")
        if u < 0.02:
            z = make_zone(run, i)
            store.put_zone(z, "regulator", T0_S + i)
            ack(f"Z {z.id}\n")


def main(argv: list[str]) -> int:
    """``DB RUN [N_MAX [THREADS]]``; ``N_MAX`` 0 = forever; ``THREADS`` default 1."""
    db, run = argv[0], int(argv[1])
    n_max = int(argv[2]) if len(argv) > 2 and int(argv[2]) > 0 else None
    n_threads = int(argv[3]) if len(argv) > 3 else 1
    store = Store(db)
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=_book, args=(store, run, k, n_threads, n_max, sys.stdout, lock)
        )
        for k in range(n_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    return 0


def bench(directory: str, n: int = 2000) -> list[str]:
    """Insert throughput (flights/s) of the store; the figures in the store's report.

    ``python tests/store_crash_worker.py --bench DIR [N]`` (DIR on the disk to measure).
    Rows: ``synchronous`` FULL (the store's setting) against NORMAL (no fsync per
    commit) as the peer; single ``add_flight`` calls from 1, 8 and 32 threads (group
    commit) and ``add_flights`` batches of 10 and 100 from one thread.
    """
    import time
    from dataclasses import replace

    lines = [f"n={n} flights, 2-64 waypoints each (mean 33), db in {directory}"]
    for mode, batch, n_threads in (
        ("FULL", 1, 1), ("NORMAL", 1, 1), ("FULL", 1, 8), ("FULL", 1, 32),
        ("FULL", 10, 1), ("FULL", 100, 1), ("NORMAL", 100, 1),
    ):  # fmt: skip
        path = Path(directory) / f"bench-{mode}-{batch}-{n_threads}.db"
        for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            f.unlink(missing_ok=True)
        store = Store(path)
        store._write(lambda conn: None)  # the writer connection exists now
        for conn in store._conns:
            conn.execute(f"PRAGMA synchronous = {mode}")
        recs = [replace(make_record(7, i), request_id=f"r-{i}") for i in range(n)]

        def work(part, store=store, batch=batch):
            if batch == 1:
                for r in part:
                    store.add_flight(r)
            else:
                for k in range(0, len(part), batch):
                    store.add_flights(part[k : k + batch])

        threads = [
            threading.Thread(target=work, args=(recs[k::n_threads],))
            for k in range(n_threads)
        ]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        dt = time.perf_counter() - t
        t = time.perf_counter()
        assert len(store.accepted_flights()) == n
        dl = time.perf_counter() - t
        st = store.write_stats()
        group = st["writes"] / st["commits"]
        store.close()
        lines.append(
            f"synchronous={mode:6s} batch={batch:3d} threads={n_threads:2d}: "
            f"{n / dt:7.0f} flights/s (writes/commit {group:5.1f})"
            f"; accepted_flights() reads {n / dl:6.0f} flights/s"
        )
    return lines


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        for line in bench(sys.argv[2], *(int(x) for x in sys.argv[3:4])):
            print(line, flush=True)
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
