"""Moving AI 3D voxel benchmark: planner.search against its peers, same grid, same queries.

Usage::

    python benchmarks/bench_voxel3d.py --map Simple.3dmap --scen Simple.3dmap.3dscen \
        [--limit N] [--peer-limit M] [--peers skimage,tcod] [--json]

``--limit N`` takes N scenarios spread evenly over the file for our search;
``--peer-limit M`` (default: same as ``--limit``) takes M spread scenarios for the peers,
which are much slower. Every figure is measured in this run, single-threaded, with
numba compiled and the grids prepared before the timed region. A "mismatch" is a
scenario whose path length differs from the published optimum by more than 1e-6
relative.

Peers
-----
* ``skimage``: ``skimage.graph.MCP_Geometric`` (``fully_connected=True``): Dijkstra
  from the start until the goal is reached. It has no way to forbid corner cutting, so
  it solves the ``"free"`` rule and finds paths SHORTER than the published (strict)
  optimum: its mismatches are counted against the strict optimum, and its agreement
  with our ``rule="free"`` search is reported as ``free_rule_mismatches``.
* ``tcod``: ``tcod.path.CustomGraph`` + ``Pathfinder`` (libtcod, C). The strict rule is
  expressed exactly with one ``condition`` array per direction (the move is allowed
  where its whole bounding box is free); A* with the admissible heuristic
  ``cardinal=1, diagonal=sqrt2, z=sqrt3-sqrt2`` (libtcod's heuristic is 2D octile plus
  a per-axis term). libtcod costs are integers, so edge costs are the Euclidean lengths
  times 10**6, rounded; the reported length is the Euclidean length of the returned
  path. Each query clears the pathfinder's whole-grid arrays (part of its API cost).

Neither peer reports node expansions, so expansions per second is given for ours only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from skytwin.planner.search import SearchGrid, SearchWorkspace, find_path
from skytwin.planner.voxel3d import read_map, read_scenarios

REL_TOL = 1e-6
TCOD_SCALE = 1_000_000


def _summary(lengths, optimum, times_s, expansions=None):
    lengths = np.asarray(lengths, float)
    optimum = np.asarray(optimum, float)
    times_ms = np.asarray(times_s, float) * 1e3
    bad = np.abs(lengths - optimum) > REL_TOL * optimum
    out = {
        "scenarios": len(lengths),
        "mismatches": int(bad.sum()),
        "median_ms": float(np.median(times_ms)),
        "p99_ms": float(np.percentile(times_ms, 99)),
        "mean_ms": float(times_ms.mean()),
    }
    if expansions is not None:
        exp = np.asarray(expansions, float)
        out["mean_expansions"] = float(exp.mean())
        out["expansions_per_s"] = float(exp.sum() / (times_ms.sum() / 1e3))
    return out


def run_ours(blocked, scen, rule="strict"):
    grid = SearchGrid(blocked)
    ws = SearchWorkspace(blocked.shape)
    find_path(
        grid, scen.start[0], scen.goal[0], workspace=ws, rule=rule
    )  # compile/load
    lengths, times, exps = [], [], []
    for s, g in zip(scen.start, scen.goal, strict=True):
        t0 = time.perf_counter()
        p = find_path(grid, s, g, workspace=ws, rule=rule)
        times.append(time.perf_counter() - t0)
        lengths.append(p.cost)
        exps.append(p.expansions)
    return lengths, times, exps


def _euclid(path) -> float:
    d = np.diff(np.asarray(path, dtype=float), axis=0)
    return float(np.sqrt((d * d).sum(axis=1)).sum())


def run_skimage(blocked, scen):
    from skimage.graph import MCP_Geometric

    costs = np.where(blocked != 0, np.inf, 1.0)
    mcp = MCP_Geometric(costs, fully_connected=True)
    lengths, times = [], []
    for s, g in zip(scen.start, scen.goal, strict=True):
        s, g = tuple(int(v) for v in s), tuple(int(v) for v in g)
        t0 = time.perf_counter()
        cum, _ = mcp.find_costs([s], [g], find_all_ends=True)
        path = mcp.traceback(g)
        times.append(time.perf_counter() - t0)
        lengths.append(_euclid(path))
        assert math.isclose(cum[g], lengths[-1], rel_tol=1e-9), (cum[g], lengths[-1])
    return lengths, times


def _strict_conditions(blocked):
    """For each of the 26 moves: uint8 array, 1 where the move's bounding box is free."""
    free = np.zeros(tuple(n + 2 for n in blocked.shape), dtype=bool)
    free[1:-1, 1:-1, 1:-1] = blocked == 0
    n = blocked.shape

    def shifted(dx, dy, dz):
        return free[
            1 + dx : 1 + dx + n[0], 1 + dy : 1 + dy + n[1], 1 + dz : 1 + dz + n[2]
        ]

    out = {}
    for d in np.ndindex(3, 3, 3):
        d = tuple(int(v) - 1 for v in d)
        if d == (0, 0, 0):
            continue
        ok = shifted(0, 0, 0).copy()
        for ex in {0, d[0]}:
            for ey in {0, d[1]}:
                for ez in {0, d[2]}:
                    ok &= shifted(ex, ey, ez)
        out[d] = ok.view(np.uint8)
    return out


def run_tcod(blocked, scen):
    import tcod.path

    cost = (blocked == 0).astype(np.uint8)
    graph = tcod.path.CustomGraph(blocked.shape)
    for d, cond in _strict_conditions(blocked).items():
        length = math.sqrt(sum(v * v for v in d))
        graph.add_edge(d, round(TCOD_SCALE * length), cost=cost, condition=cond)
    s1, s2, s3 = (round(TCOD_SCALE * math.sqrt(k)) for k in (1, 2, 3))
    graph.set_heuristic(cardinal=s1, diagonal=s2, z=s3 - s2)
    pf = tcod.path.Pathfinder(graph)
    lengths, times = [], []
    for s, g in zip(scen.start, scen.goal, strict=True):
        s, g = tuple(int(v) for v in s), tuple(int(v) for v in g)
        t0 = time.perf_counter()
        pf.clear()
        pf.add_root(s)
        path = pf.path_to(g)
        times.append(time.perf_counter() - t0)
        lengths.append(_euclid(path))
    return lengths, times


PEERS = {"skimage_mcp": run_skimage, "tcod": run_tcod}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", required=True, type=Path)
    ap.add_argument("--scen", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=None, help="scenarios for our search")
    ap.add_argument(
        "--peer-limit",
        type=int,
        default=None,
        help="scenarios for the peers (default: --limit)",
    )
    ap.add_argument(
        "--peers",
        default="skimage_mcp,tcod",
        help="comma-separated subset of: " + ",".join(PEERS) + " (or 'none')",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    blocked = read_map(args.map)
    all_scen = read_scenarios(args.scen)
    scen = all_scen.spread(args.limit)
    peer_limit = args.peer_limit if args.peer_limit is not None else args.limit
    peer_scen = all_scen.spread(peer_limit)

    lengths, times, exps = run_ours(blocked, scen)
    result = {"map": args.map.name, "shape": list(blocked.shape)}
    result.update(_summary(lengths, scen.length, times, exps))
    result["peers"] = {}
    names = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    if names:
        # Our search on exactly the peers' queries, for the side-by-side ratio.
        o_len, o_t, o_e = run_ours(blocked, peer_scen)
        result["ours_on_peer_queries"] = _summary(o_len, peer_scen.length, o_t, o_e)
    for name in names:
        if name not in PEERS:
            ap.error(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
        p_len, p_t = PEERS[name](blocked, peer_scen)
        summary = _summary(p_len, peer_scen.length, p_t)
        summary["expansions_per_s"] = None
        if name == "skimage_mcp":
            free_len, _, _ = run_ours(blocked, peer_scen, rule="free")
            summary["free_rule_mismatches"] = _summary(p_len, free_len, p_t)[
                "mismatches"
            ]
        summary["median_ratio_vs_ours"] = (
            summary["median_ms"] / result["ours_on_peer_queries"]["median_ms"]
        )
        summary["mean_ratio_vs_ours"] = (
            summary["mean_ms"] / result["ours_on_peer_queries"]["mean_ms"]
        )
        result["peers"][name] = summary
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print_table(result)
    return result


def _print_table(r) -> None:
    print(f"map {r['map']} shape {tuple(r['shape'])}")
    hdr = (
        f"{'search':<28}{'n':>7}{'mismatch':>9}{'median ms':>11}{'p99 ms':>10}"
        f"{'mean ms':>10}{'Mexp/s':>8}"
    )
    print(hdr)

    def row(name, s):
        eps = s.get("expansions_per_s")
        eps = "n/a" if eps is None else f"{eps / 1e6:.2f}"
        print(
            f"{name:<28}{s['scenarios']:>7}{s['mismatches']:>9}{s['median_ms']:>11.3f}"
            f"{s['p99_ms']:>10.2f}{s['mean_ms']:>10.3f}{eps:>8}"
        )

    row("planner.search (strict)", r)
    if "ours_on_peer_queries" in r:
        row("  same, peer queries", r["ours_on_peer_queries"])
    for name, s in r["peers"].items():
        row(name, s)
        extra = (
            f"    mean time {s['mean_ratio_vs_ours']:.1f}x ours, median "
            f"{s['median_ratio_vs_ours']:.1f}x"
        )
        if "free_rule_mismatches" in s:
            extra += (
                f"; vs our rule='free' optimum: {s['free_rule_mismatches']} mismatches"
            )
        print(extra)


if __name__ == "__main__":
    main()
