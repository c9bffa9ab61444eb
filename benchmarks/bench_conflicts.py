"""Conflict detection at scale vs a vectorised all-pairs closest-point-of-approach peer.

    python benchmarks/bench_conflicts.py [--flights N ...] [--baseline-max N] [--json]

Scenario: ``fixtures.traffic.generate(N, seed)`` (delivery hubs + through traffic, 10 km x
10 km, one hour). Timed: ``planner.conflicts.detect`` with the default separation
(30 m / 10 m / 5 s buffer) and with no buffer. Peer: the state-based CPA that tactical
simulators such as BlueSky run (``tcpa``, ``dcpa``, ``t_in``, ``t_out`` for every pair),
applied to every pair of segments of every pair of flights, numpy-vectorised in chunks;
it is O(segments^2) and runs only up to ``--baseline-max`` flights. Where both run
(no buffer: the peer has no notion of timing uncertainty; both apply the minima with the
same 1e-7 relative tolerance) the conflicting pair sets must be identical; the ratio is peer time / detector time. Numba compilation is excluded
(warm-up on a tiny fleet). Single-threaded.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from skytwin.fixtures.traffic import generate
from skytwin.planner.conflicts import SEPARATION_RTOL, Separation, detect, pack_segments


def cpa_all_pairs(trajectories, h_m: float, v_m: float, chunk: int = 64):
    """Set of conflicting (i, j) flight-index pairs by all-pairs segment CPA (numpy)."""
    s = pack_segments(trajectories)
    m = s.t0.size
    v = (s.p1 - s.p0) / (s.t1 - s.t0)[:, None]
    found = set()
    for a in range(0, m, chunk):
        i = np.arange(a, min(a + chunk, m))[:, None]
        j = np.arange(a, m)[None, :]
        lo = np.maximum(s.t0[i], s.t0[j])
        hi = np.minimum(s.t1[i], s.t1[j])
        ok = (hi > lo) & (s.owner[i] < s.owner[j])
        # relative state at lo: positions, velocity
        pi = s.p0[i] + v[i] * (lo - s.t0[i])[..., None]
        pj = s.p0[j] + v[j] * (lo - s.t0[j])[..., None]
        d = pi - pj
        dv = v[i] - v[j]
        dur = hi - lo
        vh2 = dv[..., 0] ** 2 + dv[..., 1] ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            tcpa_s = np.where(vh2 > 0, -(d[..., 0] * dv[..., 0] + d[..., 1] * dv[..., 1]) / vh2,
                              0.0)
            dcpa2 = (d[..., 0] + dv[..., 0] * tcpa_s) ** 2 + (d[..., 1] + dv[..., 1] * tcpa_s) ** 2
            half = np.sqrt(np.maximum(h_m * h_m - dcpa2, 0.0) / np.where(vh2 > 0, vh2, 1.0))
            t_in_s = np.where(vh2 > 0, tcpa_s - half, 0.0)
            t_out_s = np.where(vh2 > 0, tcpa_s + half, dur)
            ok &= dcpa2 < h_m * h_m
            z1 = (-v_m - d[..., 2]) / dv[..., 2]
            z2 = (v_m - d[..., 2]) / dv[..., 2]
            vz_in = np.where(dv[..., 2] != 0, np.minimum(z1, z2), 0.0)
            vz_out = np.where(dv[..., 2] != 0, np.maximum(z1, z2), dur)
        ok &= (dv[..., 2] != 0) | (np.abs(d[..., 2]) < v_m)
        t_in_s = np.maximum.reduce([t_in_s, vz_in, np.zeros_like(dur)])
        t_out_s = np.minimum.reduce([t_out_s, vz_out, dur])
        ok &= t_out_s > t_in_s
        ii, jj = np.nonzero(ok)
        for x, y in zip(s.owner[i[ii, 0]].tolist(), s.owner[j[0, jj]].tolist()):
            found.add((x, y))
    return found


def run(n: int, baseline_max: int, seed: int = 1) -> dict:
    flights, _ = generate(n, seed=seed)
    idx = {f.flight_id: k for k, f in enumerate(flights)}
    t = time.perf_counter()
    with_buffer = detect(flights, Separation())
    t_buf = time.perf_counter() - t
    t = time.perf_counter()
    no_buffer = detect(flights, Separation(30.0, 10.0, 0.0))
    t_det = time.perf_counter() - t
    row = {"flights": n, "conflicts": len(with_buffer), "detect_s": t_buf,
           "conflicts_no_buffer": len(no_buffer), "detect_no_buffer_s": t_det,
           "cpa_s": None, "ratio": None, "equal": None}
    if n <= baseline_max:
        t = time.perf_counter()
        # same definition: minima shrunk by SEPARATION_RTOL, else the peer reports
        # rounding-level "conflicts" where a climb ends exactly V below a cruise
        peer = cpa_all_pairs(flights, 30.0 * (1 - SEPARATION_RTOL),
                             10.0 * (1 - SEPARATION_RTOL))
        row["cpa_s"] = time.perf_counter() - t
        ours = {(idx[c.flight_a], idx[c.flight_b]) for c in no_buffer}
        row["equal"] = ours == peer
        row["ratio"] = row["cpa_s"] / t_det
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flights", type=int, nargs="+", default=[1000, 10000, 30000])
    ap.add_argument("--baseline-max", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    warm, _ = generate(50, seed=0)
    detect(warm)
    rows = [run(n, args.baseline_max, args.seed) for n in args.flights]
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else {"runs": rows}))
        return
    print(f"{'flights':>8} {'conflicts':>9} {'detect_s':>9} {'no-buf confl':>12} "
          f"{'no-buf s':>9} {'CPA peer s':>10} {'ratio':>7} {'same set':>8}")
    for r in rows:
        cpa = f"{r['cpa_s']:.2f}" if r["cpa_s"] is not None else "-"
        ratio = f"{r['ratio']:.0f}x" if r["ratio"] is not None else "-"
        eq = str(r["equal"]) if r["equal"] is not None else "-"
        print(f"{r['flights']:>8} {r['conflicts']:>9} {r['detect_s']:>9.2f} "
              f"{r['conflicts_no_buffer']:>12} {r['detect_no_buffer_s']:>9.2f} {cpa:>10} "
              f"{ratio:>7} {eq:>8}")


if __name__ == "__main__":
    main()
