"""The ``skytwin`` command line.

Subcommands are thin: they parse arguments, call :mod:`airspace` / :mod:`planner`, and
print either a human summary or (``--json``) one JSON object. Errors from the domain are
printed as one line (``error: ...``, or ``{"error": ...}`` with ``--json``) with exit
code 2; nothing is printed as a traceback for bad input.

    skytwin twin build PATH [--resolution M] [--layer M] [--clearance M] [--crs CRS]
                            [--out FILE] [--json]
    skytwin twin info FILE [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]

DEFAULT_CITY = Path(__file__).resolve().parents[1] / "fixtures" / "city" / "helsinki_centre.geojson"


class _Progress:
    """Progress on stderr for long jobs: a bar on a terminal, a few lines otherwise."""

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last_pct = -1
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        pct = int(100 * done / total)
        step = 1 if self.tty else 25
        if pct // step == self.last_pct // step and done < total:
            return
        self.last_pct = pct
        el = time.perf_counter() - self.t0
        msg = f"{self.label}: {done}/{total} ({pct}%) {el:.1f}s"
        if self.tty:
            sys.stderr.write("\r" + msg + ("\n" if done >= total else ""))
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()


def _fail(args, exc: Exception) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 2


def _print_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=None, sort_keys=True, default=str))
        return
    g = summary["grid"]
    b = summary["bounds_wgs84"]
    print(f"buildings        {summary['buildings']}")
    skipped = summary.get("skipped", [])
    n_skipped = skipped if isinstance(skipped, int) else len(skipped)
    print(f"skipped          {n_skipped}")
    if not isinstance(skipped, int):
        reasons: dict[str, int] = {}
        for s in skipped:
            reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
        for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]:
            print(f"  {n:6d} x {r}")
    print(f"bounds (WGS84)   lon {b[0]:.6f} .. {b[2]:.6f}, lat {b[1]:.6f} .. {b[3]:.6f}")
    print(f"grid             {g['nx']} x {g['ny']} x {g['nz']} voxels, "
          f"{g['dx_m']} m horizontal, {g['dz_m']} m layers")
    print(f"clearance        {summary.get('clearance_m')} m")
    print(f"blocked fraction {summary['blocked_fraction']:.4f}")
    print(f"build time       {summary['build_s']:.2f} s")
    print(f"peak memory      {summary['peak_mem_mb']:.0f} MB")


def _cmd_twin_build(args) -> int:
    from airspace.errors import AirspaceError
    from airspace.io import load_city
    from airspace.twin import build_twin

    try:
        paths = [str(p) for p in args.path] if len(args.path) > 1 else str(args.path[0])
        result = load_city(paths, crs=args.crs)
        twin = build_twin(result, resolution_m=args.resolution, layer_m=args.layer,
                          clearance_m=args.clearance,
                          progress=_Progress("rasterizing", not args.quiet))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    if args.out:
        twin.save(args.out)
    summary = twin.summary()
    if args.out:
        summary["saved_to"] = str(args.out)
    _print_summary(summary, args.json)
    return 0


def _cmd_twin_info(args) -> int:
    from airspace.errors import AirspaceError
    from airspace.twin import Twin

    try:
        twin = Twin.load(args.file)
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    _print_summary(twin.summary(), args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skytwin", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    twin = sub.add_parser("twin", help="build and inspect airspace twins")
    tsub = twin.add_subparsers(dest="twin_command", required=True)
    b = tsub.add_parser("build", help="build a twin from a city model")
    b.add_argument("path", nargs="*", type=Path, default=[DEFAULT_CITY],
                   help="CityJSON / CityJSONSeq / CityGML / GeoJSON file(s) "
                        "(default: the bundled Helsinki centre)")
    b.add_argument("--resolution", type=float, default=2.0, help="horizontal voxel size [m]")
    b.add_argument("--layer", type=float, default=2.0, help="vertical layer height [m]")
    b.add_argument("--clearance", type=float, default=5.0,
                   help="clearance kept around buildings [m]")
    b.add_argument("--crs", default=None, help="override the source CRS (e.g. EPSG:7415)")
    b.add_argument("--out", type=Path, default=None, help="save the twin to this file")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.set_defaults(func=_cmd_twin_build)
    i = tsub.add_parser("info", help="summarise a saved twin")
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_cmd_twin_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
