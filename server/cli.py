"""The ``skytwin`` command line.

Subcommands are thin: they parse arguments, call :mod:`airspace` / :mod:`planner`, and
print either a human summary or (``--json``) one JSON object. Errors from the domain are
printed as one line (``error: ...``, or ``{"error": ...}`` with ``--json``) with exit
code 2; nothing is printed as a traceback for bad input.

    skytwin twin build PATH [--resolution M] [--layer M] [--clearance M] [--crs CRS]
                            [--out FILE] [--json] [--png FILE] [--geojson FILE]
    skytwin twin info FILE [--json]
    skytwin route (--city PATH | --twin FILE) --from LON,LAT[,ALT] --to LON,LAT[,ALT]
                  [--depart TIME] [--zones ED269.json] [--json | --geojson FILE]
                  [--czml FILE] [--png FILE]
    skytwin fleet [--city PATH | --twin FILE] [--flights N] [--method cpsat|fcfs]
                  [--geojson FILE] [--czml FILE] [--json]
    skytwin demo [--out DIR]
    skytwin serve [--city PATH | --twin FILE] [--port N] [--db PATH] [--auth FILE]
                  [--host H] [--tls-cert F --tls-key F] [--workers N]
    skytwin client [--target HOST:PORT] [--token T] {info, encode, decode, blocked, plan,
                   submit, batch, get, list, cancel, watch, zones {add, update, list,
                   get, delete, query, import, export}} ...
    skytwin loadtest --target HOST:PORT [--drones N] [--concurrency C] [--duration S]
                     [--operators K] [--tokens FILE] [--seed N] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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
    if summary.get("counts"):
        seen = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items()))
        print(f"objects seen     {seen}")
    print(f"skipped          {summary.get('skipped', 0)}")
    reasons = summary.get("skipped_reasons", {})
    for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n:6d} x {r}")
    for obj in summary.get("skipped_objects", [])[:5]:
        print(f"         e.g. {obj['object_id']}: {obj['reason']}")
    print(f"bounds (WGS84)   lon {b[0]:.6f} .. {b[2]:.6f}, lat {b[1]:.6f} .. {b[3]:.6f}")
    print(f"grid             {g['nx']} x {g['ny']} x {g['nz']} voxels, "
          f"{g['dx_m']} m horizontal, {g['dz_m']} m layers")
    print(f"clearance        {summary.get('clearance_m')} m")
    print(f"blocked fraction {summary['blocked_fraction']:.4f}")
    if "read_s" in summary:
        print(f"read time        {summary['read_s']:.2f} s")
    print(f"build time       {summary['build_s']:.2f} s (rasterization, ground, indexes)")
    print(f"peak memory      {summary['peak_mem_mb']:.0f} MB")


def _cmd_twin_build(args) -> int:
    from skytwin.airspace.errors import AirspaceError
    from skytwin.airspace.io import load_city
    from skytwin.airspace.twin import build_twin

    try:
        paths = [str(p) for p in args.path] if len(args.path) > 1 else str(args.path[0])
        t_read = time.perf_counter()
        result = load_city(paths, crs=args.crs)
        read_s = time.perf_counter() - t_read
        twin = build_twin(result, resolution_m=args.resolution, layer_m=args.layer,
                          clearance_m=args.clearance,
                          progress=_Progress("rasterizing", not args.quiet))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    if args.out:
        twin.save(args.out)
    if args.png:
        from skytwin.planner.render import render_twin_png
        render_twin_png(twin, args.png)
    if args.geojson:
        from skytwin.planner.export import twin_geojson
        _write_json(args.geojson, twin_geojson(twin))
    summary = _full_summary(twin)
    summary["read_s"] = read_s
    if args.out:
        summary["saved_to"] = str(args.out)
    _print_summary(summary, args.json)
    return 0


def _cmd_twin_info(args) -> int:
    from skytwin.airspace.errors import AirspaceError
    from skytwin.airspace.twin import Twin

    try:
        twin = Twin.load(args.file)
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    _print_summary(_full_summary(twin), args.json)
    return 0


def _full_summary(twin) -> dict:
    """Twin summary plus the objects seen and the skipped objects (first 1,000)."""
    s = twin.summary()
    s["counts"] = dict(twin.meta.get("counts", {}))
    s["skipped_objects"] = list(twin.meta.get("skipped", []))[:1000]
    s["source"] = twin.meta.get("source")
    return s


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
    from skytwin.airspace.io import load_city
    from skytwin.airspace.twin import Twin, build_twin
    if getattr(args, "twin", None):
        return Twin.load(args.twin)
    return build_twin(load_city(str(args.city)), progress=_Progress("rasterizing", progress))


def _zones_from_file(twin, path):
    from skytwin.airspace.ed269 import load_ed269
    from skytwin.airspace.zones import ZoneLayer
    layer = ZoneLayer(twin.frame)
    if path:
        for z in load_ed269(path):
            layer.add(z)
    return layer


def _write_json(path, obj) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=1))


def _cmd_route(args) -> int:
    from skytwin.airspace.errors import AirspaceError
    from skytwin.planner.export import route_czml, route_geojson, twin_geojson
    from skytwin.planner.route import Planner, RouteRequest

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
        from skytwin.planner.render import render_route_png
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


def _cmd_fleet(args) -> int:
    """Plan a delivery fleet over a city, detect its conflicts, resolve them, export."""
    from skytwin.airspace.errors import AirspaceError
    from skytwin.fixtures.traffic import city_options, city_scenario
    from skytwin.planner.conflicts import Separation, detect
    from skytwin.planner.deconflict import SolveParams, deconflict, fcfs
    from skytwin.planner.export import (conflict_positions, conflicts_geojson, trajectories_czml,
                                trajectories_geojson)

    try:
        twin = _twin_from_args(args, progress=not args.json)
        depart0 = _parse_time(args.depart)
        flights = city_scenario(twin, args.flights, seed=args.seed, duration_s=args.duration,
                                t0_s=depart0,
                                progress=_Progress("planning flights", not args.json))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    sep = Separation()
    before = detect(flights, sep)
    opts = city_options(twin)
    t0 = time.perf_counter()
    if args.method == "fcfs":
        res = fcfs(flights, sep=sep, options=opts)
    else:
        res = deconflict(flights, sep=sep, options=opts,
                         params=SolveParams(max_time_in_seconds=args.budget, num_workers=2,
                                            random_seed=args.seed))
    solve_s = time.perf_counter() - t0
    delays = [c.delay_s for c in res.choices.values()]
    out = {"flights": len(flights), "conflicts_before": len(before),
           "residual": len(res.report.residual_conflicts) if res.report else None,
           "unplaced": res.unplaced, "status": res.status, "method": args.method,
           "total_delay_s": float(sum(delays)),
           "relevelled": sum(c.layer_shift != 0 for c in res.choices.values()),
           "solve_s": round(solve_s, 2)}
    if args.geojson:
        feats = trajectories_geojson(twin.frame, res.trajectories)
        feats += conflicts_geojson(twin.frame, flights, before)
        _write_json(args.geojson, {"type": "FeatureCollection", "features": feats})
    if args.png:
        from skytwin.planner.render import render_fleet_png
        pts = [pa[:2] for pa, _ in conflict_positions(flights, before)]
        render_fleet_png(twin, res.trajectories, pts, args.png)
    if args.czml:
        items = []
        for tr in res.trajectories:
            lon, lat = twin.frame.to_wgs84(tr.xyz_m[:, 0], tr.xyz_m[:, 1])
            items.append((tr.flight_id, list(zip(lon, lat, strict=True)), tr.xyz_m[:, 2],
                          tr.t_s))
        if items:
            _write_json(args.czml, trajectories_czml(items, "SkyTwin fleet"))
    if args.json:
        print(json.dumps(out))
    else:
        print(f"flights          {out['flights']} planned ({args.flights} asked)")
        print(f"conflicts before {out['conflicts_before']} (separation {sep.horizontal_m:g} m "
              f"horizontal, {sep.vertical_m:g} m vertical, {sep.time_buffer_s:g} s buffer)")
        print(f"resolution       {args.method}: {out['status']}, residual "
              f"{out['residual']} (independent verifier), {len(res.unplaced)} unplaced, "
              f"total delay {out['total_delay_s']:.0f} s, {out['relevelled']} re-levelled, "
              f"{solve_s:.1f} s")
        for fid, why in list(res.unplaced.items())[:5]:
            print(f"  unplaced {fid}: {why}")
    return 0 if out["residual"] == 0 else 1


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


# ----------------------------------------------------------------------------- serve
def _cmd_serve(args) -> int:
    """Run the gRPC service until Ctrl-C / SIGTERM."""
    import asyncio
    import logging

    from skytwin.airspace.errors import AirspaceError
    from skytwin.server.app import ServerConfig, serve
    from skytwin.server.auth import DEV_TOKENS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    cfg = ServerConfig(city=args.city, twin=args.twin, db=args.db, auth=args.auth,
                       host=args.host, port=args.port, tls_cert=args.tls_cert,
                       tls_key=args.tls_key, workers=args.workers)

    def ready(port):
        scheme = "TLS" if args.tls_cert else "plaintext"
        print(f"skytwin serving on {args.host}:{port} ({scheme}); db {args.db}", flush=True)
        if Path(args.auth).resolve() == DEV_TOKENS.resolve():
            print(f"auth: DEVELOPMENT tokens from {DEV_TOKENS} (never use in production)",
                  flush=True)
        else:
            print(f"auth: tokens from {args.auth}", flush=True)

    try:
        asyncio.run(serve(cfg, on_ready=ready))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        pass
    return 0


# ---------------------------------------------------------------------------- client
def _client_box(text):
    vals = [float(v) for v in text.split(",")]
    if len(vals) != 4:
        raise ValueError(f"--box must be MIN_LON,MIN_LAT,MAX_LON,MAX_LAT, got {text!r}")
    from skytwin.v1 import airspace_pb2 as apb
    return apb.LonLatBox(min_lon_deg=vals[0], min_lat_deg=vals[1], max_lon_deg=vals[2],
                         max_lat_deg=vals[3])


def _client_alt(text, default_ref="AGL"):
    """'60' / '60:AGL' / '60:AMSL' -> Altitude message."""
    from skytwin.v1 import airspace_pb2 as apb
    v, _, ref = text.partition(":")
    ref = (ref or default_ref).upper()
    if ref not in ("AGL", "AMSL"):
        raise ValueError(f"altitude reference must be AGL or AMSL, got {ref!r}")
    return apb.Altitude(value_m=float(v), reference=getattr(apb, f"ALTITUDE_REFERENCE_{ref}"))


def _client_route(args, frm=None, to=None):
    from google.protobuf.duration_pb2 import Duration

    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import flights_pb2 as fpb
    (slon, slat), salt = _lonlat_alt(frm or args.from_, "from")
    (glon, glat), galt = _lonlat_alt(to or args.to, "to")
    r = fpb.RouteRequest(start=apb.LonLat(lon_deg=slon, lat_deg=slat),
                         goal=apb.LonLat(lon_deg=glon, lat_deg=glat))
    if getattr(args, "depart", None):
        r.departure_time.CopyFrom(timestamp(_parse_time(args.depart)))
    if salt is not None:
        r.start_alt_amsl_m = salt
    if galt is not None:
        r.goal_alt_amsl_m = galt
    if getattr(args, "max_delay", None) is not None:
        r.max_delay.CopyFrom(Duration(seconds=int(args.max_delay)))
    if getattr(args, "priority", None):
        r.priority = args.priority
    return r


def _client_zone(args):
    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import zones_pb2 as zpb
    z = zpb.Zone(id=args.id, name=args.name or "", reason=args.reason or "",
                 authority_name=args.authority or "",
                 lower=_client_alt(args.lower), upper=_client_alt(args.upper))
    if args.circle:
        lon, lat, r = (float(v) for v in args.circle.split(","))
        z.circle.centre.CopyFrom(apb.LonLat(lon_deg=lon, lat_deg=lat))
        z.circle.radius_m = r
    elif args.polygon:
        for pt in args.polygon.split(";"):
            lon, lat = (float(v) for v in pt.split(","))
            z.polygon.vertices.append(apb.LonLat(lon_deg=lon, lat_deg=lat))
    else:
        raise ValueError("give --circle LON,LAT,RADIUS_M or --polygon 'LON,LAT;LON,LAT;...'")
    if args.active_from:
        z.active_from.CopyFrom(timestamp(_parse_time(args.active_from)))
    if args.active_until:
        z.active_until.CopyFrom(timestamp(_parse_time(args.active_until)))
    return z


def _client_call(args, stubs):
    """Build the request of ``args.rpc`` and call it; returns a message or an iterator."""
    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import changes_pb2 as cpb
    from skytwin.v1 import flights_pb2 as fpb
    from skytwin.v1 import zones_pb2 as zpb
    a, z, f, c = stubs
    cmd = args.rpc
    if cmd == "info":
        return a.GetTwinInfo(apb.GetTwinInfoRequest())
    if cmd == "encode":
        (lon, lat), _ = _lonlat_alt(args.at, "at")
        return a.EncodeGridCode(apb.EncodeGridCodeRequest(
            position=apb.LonLat(lon_deg=lon, lat_deg=lat),
            altitude=_client_alt(args.alt, "AMSL"), resolution=args.res or 0,
            layer_m=args.layer or 0.0))
    if cmd == "decode":
        return a.DecodeGridCode(apb.DecodeGridCodeRequest(code=args.code))
    if cmd == "blocked":
        lo, hi = (float(v) for v in args.band.split(","))
        req = apb.QueryBlockedCodesRequest(box=_client_box(args.box), z_lo_amsl_m=lo,
                                           z_hi_amsl_m=hi, clearance_m=args.clearance)
        if args.time:
            req.time.CopyFrom(timestamp(_parse_time(args.time)))
        return a.QueryBlockedCodes(req)
    if cmd == "plan":
        return f.PlanRoute(fpb.PlanRouteRequest(route=_client_route(args)))
    if cmd == "submit":
        return f.SubmitFlight(fpb.SubmitFlightRequest(request_id=args.request_id,
                                                      route=_client_route(args)))
    if cmd == "batch":
        routes = [_client_route(args, *p.split("/")) for p in args.pair]
        return f.SubmitBatch(fpb.SubmitBatchRequest(request_id=args.request_id,
                                                    routes=routes))
    if cmd == "get":
        return f.GetFlight(fpb.GetFlightRequest(flight_id=args.flight_id))
    if cmd == "list":
        st = {"accepted": fpb.FLIGHT_STATUS_ACCEPTED, "cancelled": fpb.FLIGHT_STATUS_CANCELLED,
              None: fpb.FLIGHT_STATUS_UNSPECIFIED}[args.status]
        return f.ListFlights(fpb.ListFlightsRequest(
            operator_id=args.operator or "", status=st, page_size=args.page_size,
            page_token=args.page_token or ""))
    if cmd == "cancel":
        return f.CancelFlight(fpb.CancelFlightRequest(flight_id=args.flight_id))
    if cmd == "watch":
        req = cpb.WatchRequest(since_sequence=args.since)
        if args.box:
            req.region.CopyFrom(_client_box(args.box))
        return c.Watch(req, timeout=args.timeout)
    zc = args.zone_command
    if zc == "add":
        return z.CreateZone(zpb.CreateZoneRequest(zone=_client_zone(args)))
    if zc == "update":
        return z.UpdateZone(zpb.UpdateZoneRequest(zone=_client_zone(args)))
    if zc == "list":
        return z.ListZones(zpb.ListZonesRequest())
    if zc == "get":
        return z.GetZone(zpb.GetZoneRequest(zone_id=args.zone_id))
    if zc == "delete":
        return z.DeleteZone(zpb.DeleteZoneRequest(zone_id=args.zone_id))
    if zc == "query":
        req = zpb.QueryZonesRequest(box=_client_box(args.box))
        if args.band:
            req.z_lo_amsl_m, req.z_hi_amsl_m = (float(v) for v in args.band.split(","))
            req.has_band = True
        if args.start:
            req.start_time.CopyFrom(timestamp(_parse_time(args.start)))
        if args.end:
            req.end_time.CopyFrom(timestamp(_parse_time(args.end)))
        return z.QueryZones(req)
    if zc == "import":
        return z.ImportEd269(zpb.ImportEd269Request(ed269_json=Path(args.file).read_text(),
                                                    replace_existing=args.replace))
    if zc == "export":
        return z.ExportEd269(zpb.ExportEd269Request(country=args.country or ""))
    raise ValueError(f"unknown client command {cmd!r}")


def _cmd_client(args) -> int:
    """Call one RPC and print the response as JSON (streams: one JSON object a line)."""
    import os

    import grpc
    from google.protobuf.json_format import MessageToDict

    from skytwin.v1 import (
        airspace_pb2_grpc,
        changes_pb2_grpc,
        flights_pb2_grpc,
        zones_pb2_grpc,
    )
    token = args.token or os.environ.get("SKYTWIN_TOKEN")
    if args.ca:
        creds = grpc.ssl_channel_credentials(Path(args.ca).read_bytes())
        channel = grpc.secure_channel(args.target, creds)
    else:
        channel = grpc.insecure_channel(args.target)
    md = (("authorization", f"Bearer {token}"),) if token else ()

    class _WithMd:
        def __init__(self, stub):
            self.stub = stub

        def __getattr__(self, name):
            fn = getattr(self.stub, name)
            return lambda req, **kw: fn(req, metadata=md, **kw)

    stubs = [_WithMd(m(channel)) for m in (
        airspace_pb2_grpc.AirspaceServiceStub, zones_pb2_grpc.ZoneServiceStub,
        flights_pb2_grpc.FlightServiceStub, changes_pb2_grpc.ChangeServiceStub)]
    dump = functools.partial(MessageToDict, preserving_proto_field_name=True,
                             always_print_fields_with_no_presence=True)
    try:
        out = _client_call(args, stubs)
        if args.rpc == "watch":
            n = 0
            try:
                for ch in out:
                    print(json.dumps(dump(ch)), flush=True)
                    n += 1
                    if args.count and n >= args.count:
                        out.cancel()
                        break
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.CANCELLED,
                                      grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            return 0
        if args.rpc == "zones" and args.zone_command == "export" and args.out:
            Path(args.out).write_text(out.ed269_json)
            print(json.dumps({"written": str(args.out)}))
            return 0
        print(json.dumps(dump(out), indent=1))
        return 0
    except grpc.RpcError as exc:
        print(json.dumps({"error": exc.details(), "code": exc.code().name}))
        return 2
    except (OSError, ValueError) as exc:
        print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        return 2
    finally:
        channel.close()


# -------------------------------------------------------------------------- loadtest
def _cmd_loadtest(args) -> int:
    """Fleet load test of a running server (loopback only); exit 1 when a check fails."""
    from skytwin.server.loadtest import LoadConfig, format_report, run_loadtest
    cfg = LoadConfig(target=args.target, drones=args.drones, concurrency=args.concurrency,
                     duration_s=args.duration, operators=args.operators, tokens=args.tokens,
                     seed=args.seed, max_requests=args.max_requests)
    try:
        rep = run_loadtest(cfg)
    except (ValueError, ConnectionError, RuntimeError, OSError) as exc:
        return _fail(args, exc)
    if args.json:
        print(json.dumps(rep, default=str))
    else:
        print(format_report(rep))
    return 0 if rep["ok"] else 1


def _add_loadtest_parser(sub) -> None:
    lt = sub.add_parser("loadtest", help="fleet load test of a running server "
                        "(loopback only)")
    lt.add_argument("--target", required=True, help="HOST:PORT (127.0.0.0/8, localhost, "
                    "::1 only)")
    lt.add_argument("--drones", type=int, default=100, help="simulated drones")
    lt.add_argument("--concurrency", type=int, default=8, help="concurrent client calls")
    lt.add_argument("--duration", type=float, default=10.0, help="load phase [s]")
    lt.add_argument("--operators", type=int, default=None, help="simulated operators "
                    "(default: one per operator token)")
    lt.add_argument("--tokens", type=Path, default=None, help="TOML token file "
                    "(default: the development tokens)")
    lt.add_argument("--seed", type=int, default=0)
    lt.add_argument("--max-requests", type=int, default=200_000,
                    help="hard cap on load-phase calls")
    lt.add_argument("--json", action="store_true", help="print one JSON object")
    lt.set_defaults(func=_cmd_loadtest)


def _add_server_parsers(sub) -> None:
    """``serve`` and ``client ...`` (the gRPC service and its shell client)."""
    from skytwin.server.auth import DEV_TOKENS
    s = sub.add_parser("serve", help="run the gRPC service (bundled city by default)")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--city", type=Path, default=DEFAULT_CITY, help="city model")
    src.add_argument("--twin", type=Path, default=None, help="a saved twin (.npz)")
    s.add_argument("--port", type=int, default=50051, help="port (0: any free port)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind")
    s.add_argument("--db", type=Path, default=Path("skytwin.db"), help="SQLite store")
    s.add_argument("--auth", type=Path, default=DEV_TOKENS, help="TOML token file "
                   "(default: the development tokens; never in production)")
    s.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain")
    s.add_argument("--tls-key", type=Path, default=None, help="PEM private key")
    s.add_argument("--workers", type=int, default=4, help="planning threads")
    s.set_defaults(func=_cmd_serve)

    c = sub.add_parser("client", help="call the gRPC service (JSON output)")
    c.add_argument("--target", default="127.0.0.1:50051", help="HOST:PORT")
    c.add_argument("--token", default=None, help="bearer token (or $SKYTWIN_TOKEN)")
    c.add_argument("--ca", default=None, help="CA certificate (PEM) for TLS")
    cs = c.add_subparsers(dest="rpc", required=True)
    cs.add_parser("info", help="GetTwinInfo")
    e = cs.add_parser("encode", help="EncodeGridCode")
    e.add_argument("--at", required=True, metavar="LON,LAT")
    e.add_argument("--alt", required=True, metavar="M[:AMSL|AGL]")
    e.add_argument("--res", type=int, default=0)
    e.add_argument("--layer", type=float, default=0.0)
    d = cs.add_parser("decode", help="DecodeGridCode")
    d.add_argument("code")
    b = cs.add_parser("blocked", help="QueryBlockedCodes")
    b.add_argument("--box", required=True, metavar="MINLON,MINLAT,MAXLON,MAXLAT")
    b.add_argument("--band", required=True, metavar="LO,HI", help="[m AMSL]")
    b.add_argument("--time", default=None)
    b.add_argument("--clearance", type=float, default=0.0)
    for name, hlp in (("plan", "PlanRoute (preview)"), ("submit", "SubmitFlight"),
                      ("batch", "SubmitBatch")):
        p = cs.add_parser(name, help=hlp)
        if name == "batch":
            p.add_argument("--pair", action="append", required=True,
                           metavar="LON,LAT/LON,LAT", help="one route (repeat)")
        else:
            p.add_argument("--from", dest="from_", required=True, metavar="LON,LAT[,ALT]")
            p.add_argument("--to", required=True, metavar="LON,LAT[,ALT]")
        p.add_argument("--depart", default=None, help="Unix seconds or ISO 8601")
        if name != "plan":
            p.add_argument("--request-id", required=True, help="idempotency key")
            p.add_argument("--max-delay", type=float, default=None, help="[s]")
            p.add_argument("--priority", type=float, default=None)
    g = cs.add_parser("get", help="GetFlight")
    g.add_argument("flight_id")
    li = cs.add_parser("list", help="ListFlights")
    li.add_argument("--operator", default=None, help="regulators only")
    li.add_argument("--status", choices=("accepted", "cancelled"), default=None)
    li.add_argument("--page-size", type=int, default=100)
    li.add_argument("--page-token", default=None)
    ca = cs.add_parser("cancel", help="CancelFlight")
    ca.add_argument("flight_id")
    w = cs.add_parser("watch", help="ChangeService.Watch (one JSON object a line)")
    w.add_argument("--box", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT")
    w.add_argument("--since", type=int, default=0, help="replay after this sequence")
    w.add_argument("--count", type=int, default=0, help="stop after N messages")
    w.add_argument("--timeout", type=float, default=None, help="stop after S seconds")
    zo = cs.add_parser("zones", help="ZoneService")
    zs = zo.add_subparsers(dest="zone_command", required=True)
    for name in ("add", "update"):
        za = zs.add_parser(name, help="CreateZone" if name == "add" else "UpdateZone")
        za.add_argument("--id", required=True)
        za.add_argument("--circle", default=None, metavar="LON,LAT,RADIUS_M")
        za.add_argument("--polygon", default=None, metavar="'LON,LAT;LON,LAT;...'")
        za.add_argument("--lower", default="0:AGL", metavar="M[:AGL|AMSL]")
        za.add_argument("--upper", default="120:AGL", metavar="M[:AGL|AMSL]")
        za.add_argument("--active-from", default=None)
        za.add_argument("--active-until", default=None)
        za.add_argument("--name", default=None)
        za.add_argument("--reason", default=None)
        za.add_argument("--authority", default=None)
    zs.add_parser("list", help="ListZones")
    for name in ("get", "delete"):
        zg = zs.add_parser(name, help=f"{name.capitalize()}Zone")
        zg.add_argument("zone_id")
    zq = zs.add_parser("query", help="QueryZones")
    zq.add_argument("--box", required=True, metavar="MINLON,MINLAT,MAXLON,MAXLAT")
    zq.add_argument("--band", default=None, metavar="LO,HI", help="[m AMSL]")
    zq.add_argument("--start", default=None)
    zq.add_argument("--end", default=None)
    zi = zs.add_parser("import", help="ImportEd269")
    zi.add_argument("file")
    zi.add_argument("--replace", action="store_true")
    zx = zs.add_parser("export", help="ExportEd269")
    zx.add_argument("--country", default=None)
    zx.add_argument("--out", default=None, help="write the JSON here")
    c.set_defaults(func=_cmd_client)


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
    b.add_argument("--png", default=None, help="render the height and clearance fields")
    b.add_argument("--geojson", default=None, help="write the buildings (WGS84 footprints "
                   "with heights) as GeoJSON")
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

    fl = sub.add_parser("fleet", help="plan a delivery fleet, detect and resolve conflicts")
    fsrc = fl.add_mutually_exclusive_group()
    fsrc.add_argument("--city", type=Path, default=DEFAULT_CITY)
    fsrc.add_argument("--twin", type=Path)
    fl.add_argument("--flights", type=int, default=200)
    fl.add_argument("--duration", type=float, default=1800.0, help="departure span [s]")
    fl.add_argument("--depart", default=None, help="first departure (default: now)")
    fl.add_argument("--seed", type=int, default=0)
    fl.add_argument("--method", choices=("cpsat", "fcfs"), default="cpsat")
    fl.add_argument("--budget", type=float, default=20.0, help="CP-SAT time budget [s]")
    fl.add_argument("--geojson", default=None, help="flights and conflicts as GeoJSON")
    fl.add_argument("--czml", default=None, help="resolved flights as CZML (Cesium)")
    fl.add_argument("--png", default=None, help="render the fleet and its conflicts")
    fl.add_argument("--json", action="store_true")
    fl.set_defaults(func=_cmd_fleet)

    d = sub.add_parser("demo", help="build the bundled city's twin and plan a route")
    d.add_argument("--out", default="skytwin-demo", help="output folder")
    d.set_defaults(func=_cmd_demo)
    _add_server_parsers(sub)
    _add_loadtest_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
