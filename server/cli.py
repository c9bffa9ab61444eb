"""The ``skytwin`` command line.

Subcommands are thin: they parse arguments, call :mod:`airspace` / :mod:`planner`, and
print either a human summary or (``--json``) one JSON object. Errors from the domain are
printed as one line (``error: ...``, or ``{"error": ...}`` with ``--json``) with exit
code 2; nothing is printed as a traceback for bad input.

    skytwin twin build PATH [--resolution M] [--layer M] [--clearance M] [--crs CRS]
                            [--out FILE] [--json]
    skytwin twin info FILE [--json]
    skytwin route (--city PATH | --twin FILE) --from LON,LAT[,ALT] --to LON,LAT[,ALT]
                  [--depart TIME] [--zones ED269.json] [--json | --geojson FILE]
                  [--czml FILE] [--png FILE]
    skytwin demo [--out DIR]
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


def _lonlat_alt(text: str, name: str):
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise ValueError(f"--{name} must be LON,LAT or LON,LAT,ALT (degrees, metres AMSL), "
                         f"got {text!r}")
    try:
        vals = [float(p) for p in parts]
    except ValueError as exc:
        raise ValueError(f"--{name}: {exc}") from None
    return (vals[0], vals[1]), (vals[2] if len(vals) == 3 else None)


def _parse_time(text: str | None) -> float:
    import datetime as dt
    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--depart must be Unix seconds or ISO 8601 "
                         f"(e.g. 2026-11-22T11:00:00Z), got {text!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp()


def _twin_from_args(args, progress=True):
    from airspace.io import load_city
    from airspace.twin import Twin, build_twin
    if getattr(args, "twin", None):
        return Twin.load(args.twin)
    return build_twin(load_city(str(args.city)), progress=_Progress("rasterizing", progress))


def _zones_from_file(twin, path):
    from airspace.ed269 import load_ed269
    from airspace.zones import ZoneLayer
    layer = ZoneLayer(twin.frame)
    if path:
        for z in load_ed269(path):
            layer.add(z)
    return layer


def _write_json(path, obj) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=1))


def _cmd_route(args) -> int:
    from airspace.errors import AirspaceError
    from planner.export import route_czml, route_geojson, twin_geojson
    from planner.route import Planner, RouteRequest

    try:
        start, s_alt = _lonlat_alt(args.from_, "from")
        goal, g_alt = _lonlat_alt(args.to, "to")
        depart = _parse_time(args.depart)
        twin = _twin_from_args(args, progress=not args.json)
        zones = _zones_from_file(twin, args.zones)
        planner = Planner(twin, zones)
        route = planner.plan(RouteRequest(start, goal, depart_s=depart, flight_id="cli",
                                          start_alt_amsl_m=s_alt, goal_alt_amsl_m=g_alt))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    d = route.to_dict()
    if args.geojson:
        near = twin.index.query(_route_box(route, 60.0))
        extra = twin_geojson(twin, {twin.buildings[n].id for n in near})["features"]
        _write_json(args.geojson, route_geojson(route, extra))
    if args.czml:
        _write_json(args.czml, route_czml(route))
    if args.png:
        from planner.render import render_route_png
        render_route_png(twin, route, args.png, zones=zones.local_zones(
            route.trajectory.t_start_s, route.trajectory.t_end_s))
    if args.json:
        print(json.dumps(d))
    else:
        _print_route(d)
    return 0


def _route_box(route, margin_m):
    import shapely
    xyz = route.xyz_m
    return shapely.box(xyz[:, 0].min() - margin_m, xyz[:, 1].min() - margin_m,
                       xyz[:, 0].max() + margin_m, xyz[:, 1].max() + margin_m)


def _print_route(d: dict) -> None:
    print(f"route            {len(d['waypoints'])} waypoints, {d['length_m']:.1f} m "
          f"(voxel path {d['voxel_length_m']:.1f} m, straight line {d['straight_m']:.1f} m)")
    print(f"duration         {d['duration_s']:.1f} s")
    print(f"clearance        {d['clearance_m']} m from every building (exact check)")
    print(f"search           {d['expansions']} expansions, {d['search_ms']:.1f} ms "
          f"(cells of {d['search_level']}x the twin resolution); total {d['total_ms']:.1f} ms")
    print("  t [s]      lon            lat        alt AMSL [m]  alt AGL [m]")
    for w in d["waypoints"]:
        print(f"  {w['t_s']:8.2f}  {w['lon']:.9f}  {w['lat']:.9f}  {w['alt_amsl_m']:10.2f}"
              f"  {w['alt_agl_m']:10.2f}")


DEMO_FROM = "24.94030,60.17150"   # Rautatientori (Railway Square), Helsinki
DEMO_TO = "24.95240,60.16760"     # Kauppatori (Market Square), Helsinki


def _cmd_demo(args) -> int:
    """Build the bundled city's twin, then plan, check and export one route across it."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"== building the airspace twin of the bundled city ({DEFAULT_CITY.name})")
    twin_file = out / "helsinki_twin.npz"
    rc = main(["twin", "build", str(DEFAULT_CITY), "--out", str(twin_file)])
    if rc:
        return rc
    print(f"\n== planning a route {DEMO_FROM} -> {DEMO_TO} (Railway Square -> Market Square)")
    rc = main(["route", "--twin", str(twin_file), "--from", DEMO_FROM, "--to", DEMO_TO,
               "--geojson", str(out / "route.geojson"), "--czml", str(out / "route.czml"),
               "--png", str(out / "route.png")])
    if rc:
        return rc
    print(f"\nwrote {out}/: helsinki_twin.npz, route.geojson, route.czml, route.png")
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

    r = sub.add_parser("route", help="plan one checked 4D route")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--city", type=Path, default=DEFAULT_CITY,
                     help="city model to build the twin from (default: bundled city)")
    src.add_argument("--twin", type=Path, help="a twin saved by 'skytwin twin build --out'")
    r.add_argument("--from", dest="from_", required=True, metavar="LON,LAT[,ALT]",
                   help="start (WGS84 degrees; optional pad altitude [m AMSL])")
    r.add_argument("--to", required=True, metavar="LON,LAT[,ALT]", help="goal")
    r.add_argument("--depart", default=None,
                   help="departure time, Unix seconds or ISO 8601 (default: now)")
    r.add_argument("--zones", default=None, help="ED-269 JSON file of no-fly volumes")
    r.add_argument("--json", action="store_true", help="print the route as JSON")
    r.add_argument("--geojson", default=None, help="write the route (and nearby "
                   "buildings) as GeoJSON")
    r.add_argument("--czml", default=None, help="write the 4D trajectory as CZML (Cesium)")
    r.add_argument("--png", default=None, help="render map view + altitude profile")
    r.set_defaults(func=_cmd_route)

    d = sub.add_parser("demo", help="build the bundled city's twin and plan a route")
    d.add_argument("--out", default="skytwin-demo", help="output folder")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
