"""The ``skytwin`` command line.

Subcommands are thin: they parse arguments, call :mod:`skytwin.airspace` /
:mod:`skytwin.planner` (or the gRPC service), and print a human summary or (``--json``)
one JSON object.

Errors. Every mistake a person can make on the command line ends in one line on
stderr and exit code 2 (``error: ...``, or ``{"error": {"code": ..., "message": ...}}``
with ``--json`` and always for ``client``), never in a traceback. What can be checked
before any work is checked first: argument ranges and forms (by the argparse types
below), input files readable, output paths writable (their folder exists), ports in
range and free, TLS files readable and matching, hosts resolvable, ``--target`` with
its port. Ctrl-C ends any command quietly with exit code 130. An unexpected error is
one line too (exit 1), with its traceback only when ``SKYTWIN_DEBUG=1``.

Progress. Steps that can take more than a second (reading a city model, building and
saving a twin, planning a fleet) show one status line on stderr, only when stderr is
a terminal and never with ``--json``.

    skytwin twin build [PATH ...] [--resolution M] [--layer M] [--clearance M] [--crs CRS]
                       [--out FILE] [--json] [--png FILE] [--geojson FILE] [--quiet]
    skytwin twin info FILE [--json]
    skytwin route [--city PATH | --twin FILE] --from LON,LAT[,ALT] --to LON,LAT[,ALT]
                  [--depart TIME] [--zones ED269.json] [--json] [--geojson FILE]
                  [--czml FILE] [--png FILE] [--risk-weight W] [--max-band B]
                  [--population FILE] [--derive-zones] [--zone-rules FILE]
                  [--authorisation ID ...]
    skytwin zones derive PATH [--rules FILE] [--ed269 FILE] [--json]
    skytwin fleet [--city PATH | --twin FILE] [--flights N] [--method cpsat|fcfs]
                  [--geojson FILE] [--czml FILE] [--png FILE] [--json]
                  [--ray off|local|auto|ADDRESS [--ray-cpus N] [--window S]]
    skytwin demo [--out DIR]
    skytwin serve [--city PATH | --twin FILE] [--port N] [--db PATH] [--auth FILE]
                  [--host H] [--tls-cert F --tls-key F] [--workers N] [--web PORT|off]
                  [--zone-rules FILE] [--population FILE]
    skytwin client [--target HOST:PORT] [--token T] [--ca F] {info, encode, decode, risk,
                   blocked, plan, submit, batch, get, list, cancel, watch, zones {add,
                   update, list, get, delete, query, import, export, derived,
                   override}} ...
    skytwin loadtest --target HOST:PORT [--drones N] [--concurrency C] [--duration S]
                     [--allow-remote] [--keep] [--json] ...
    skytwin simulate --target HOST:PORT --drones N --duration S [--fault-share F]
                     [--seed K] [--token T ...] [--regulator-token T] [--json]

Routes and flights print in one format (``docs/route.schema.json``): the same names
and units from ``skytwin route --json``, ``skytwin client plan/submit/get/...`` and the
GeoJSON properties of :mod:`skytwin.planner.export`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import socket
import sys
import threading
import time
from pathlib import Path

__all__ = ["DESCRIPTION", "UsageError", "build_parser", "main"]

DEFAULT_CITY = Path(__file__).resolve().parents[1] / "fixtures" / "city" / "helsinki_centre.geojson"

DESCRIPTION = ("SkyTwin: a 3D airspace twin of a city, checked 4D drone routes, fleet "
               "deconfliction and a gRPC service for operators and regulators.")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
SWITCH_INTERVAL_S = 0.001   # sys.setswitchinterval of `skytwin serve` (see _cmd_serve)

#: Wanted as JSON: errors found while parsing (before ``args`` exists) follow ``--json``.
_JSON_ERRORS = False


class UsageError(ValueError):
    """A wrong argument or an unusable file, port or host, found before any work."""


# ---------------------------------------------------------------------------- errors
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error_code(exc: BaseException) -> str:
    """A gRPC-style status name for an error of the command line (same keys as client)."""
    from skytwin.planner.route import PlanError
    if isinstance(exc, FileNotFoundError):
        return "NOT_FOUND"
    if isinstance(exc, PermissionError):
        return "PERMISSION_DENIED"
    if isinstance(exc, PlanError) and getattr(exc, "code", None) != "invalid":
        return "FAILED_PRECONDITION"
    if isinstance(exc, ConnectionError):
        return "UNAVAILABLE"
    if isinstance(exc, (ValueError, OSError)):
        return "INVALID_ARGUMENT"
    return "INTERNAL"


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _emit_error(message: str, code: str, as_json: bool) -> None:
    message = _one_line(message)
    if as_json:
        text = json.dumps({"error": {"code": code, "message": message}})
    else:
        text = f"error: {message}"
    print(text, file=sys.stderr, flush=True)


def _fail(args, exc: BaseException, code: str | None = None) -> int:
    """Print ``exc`` as one line on stderr (JSON with ``--json``); exit code 2."""
    _emit_error(_error_message(exc), code or _error_code(exc),
                bool(getattr(args, "json", False)))
    return EXIT_USAGE


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` unless the help already says its default or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS)
                or isinstance(action.default, (list, tuple))):
            return text
        if isinstance(action.default, Path):
            return text + f" (default: {action.default.name})"
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse with defaults in the help and one-line errors (exit code 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        _emit_error(f"{self.prog}: {message} (see '{self.prog} --help')",
                    "INVALID_ARGUMENT", _JSON_ERRORS)
        raise SystemExit(EXIT_USAGE)


# ----------------------------------------------------------------- argument types
def _number(kind, lo=None, hi=None, lo_open=False, what=""):
    """An argparse type: ``kind`` (int/float), finite, within ``lo..hi``."""
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        bad = (not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo))
               or (hi is not None and v > hi))
        if bad:
            rng = (f"{'more than' if lo_open else 'at least'} {lo:g}" if hi is None else
                   f"between {lo:g} and {hi:g}")
            raise argparse.ArgumentTypeError(f"{what or 'value'} must be {rng}, got {text}")
        return v
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_port = _number(int, 0, 65535, what="port")
_count = _number(int, 1, what="count")
_non_negative_int = _number(int, 0, what="value")
_positive = _number(float, 0, lo_open=True, what="value")
_non_negative = _number(float, 0, what="value")
_resolution = _number(float, 0.1, 100.0, what="the horizontal voxel size [m]")
_layer = _number(float, 0.1, 100.0, what="the vertical layer height [m]")
_clearance = _number(float, 0.0, 500.0, what="the clearance [m]")
_unknown_height = _number(float, 0.1, 1000.0,
                          what="the assumed height of buildings with no height [m]")
_risk_weight = _number(float, 0.0, 1000.0, what="the risk weight")
_band = _number(int, 1, 6, what="the SORA population band")


def _population_file(text) -> Path:
    """An argparse type: a readable population file, ``.csv`` or ``.asc``."""
    p = _in_file(text)
    if p.suffix.lower() not in (".csv", ".asc"):
        raise argparse.ArgumentTypeError(f"{text}: a population file is .csv (lon, lat, "
                                         "people) or .asc (ESRI ASCII grid)")
    return p


def _in_file(text) -> Path:
    """An argparse type: an existing, readable file."""
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if not os.access(p, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable (permission denied)")
    return p


def _out_file(text) -> Path:
    """An argparse type: a file that can be written (its folder exists and is writable)."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {parent} does not exist "
                                         "(create it first)")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text}: not writable (permission denied)")
    return p


def _out_dir(text) -> Path:
    """An argparse type: a folder to write into (created if its parent exists)."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    parent = p if p.exists() else (p.parent if str(p.parent) else Path("."))
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: not writable (permission denied)")
    return p


def _split_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``) -> ``(host, port)``; the port is required."""
    t = str(text).strip()
    if t.startswith("["):
        host, sep, rest = t[1:].partition("]")
        if not sep:
            raise ValueError(f"target {text!r}: unclosed '[' (write IPv6 as [::1]:PORT)")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port = t.rpartition(":")
        if ":" in host:
            raise ValueError(f"target {text!r}: write IPv6 hosts as [ADDRESS]:PORT")
        if not sep:
            host, port = t, ""
    if not host or not port:
        raise ValueError(f"target {text!r} must be HOST:PORT (the port is required), "
                         "e.g. 127.0.0.1:50051")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"target {text!r}: the port must be a number in 1..65535")
    return host, int(port)


def _resolve(host: str, port: int, what: str) -> None:
    """Raise UsageError when ``host`` does not resolve."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise UsageError(f"{what} {host!r} does not resolve ({reason})") from None


def _target(text) -> str:
    """An argparse type: ``HOST:PORT`` of a server, host resolvable."""
    try:
        host, port = _split_target(text)
        _resolve(host, port, "host")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(text).strip()


def _loadtest_target(text) -> str:
    """An argparse type: ``HOST:PORT`` (loopback rules are checked by the command)."""
    try:
        _split_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(text).strip()


# -------------------------------------------------------------------------- checks
_ZIP_MAGIC = b"PK\x03\x04"


def _check_twin_file(path) -> Path:
    """A saved twin is an ``.npz`` (zip) file; say so clearly when it is not."""
    p = Path(path)
    with open(p, "rb") as fh:
        head = fh.read(64)
    if head.startswith(_ZIP_MAGIC):
        return p
    text = head.lstrip()[:1]
    hint = ""
    if text in (b"{", b"<"):
        hint = (f"; it looks like a city model: build a twin from it with "
                f"'skytwin twin build {p} --out twin.npz'")
    raise UsageError(f"{p} is not a saved SkyTwin twin (a .npz file written by "
                     f"'skytwin twin build --out'){hint}")


def _load_twin(path):
    from skytwin.airspace.errors import MalformedInputError
    from skytwin.airspace.twin import Twin
    _check_twin_file(path)
    try:
        return Twin.load(path)
    except MalformedInputError:
        raise UsageError(f"{path} is not a readable SkyTwin twin (damaged, or written by "
                         "another version); rebuild it with 'skytwin twin build --out'"
                         ) from None


def _check_port_free(host: str, port: int) -> None:
    """Raise UsageError when ``host:port`` is held by another process (0: any port)."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r} does not resolve ({exc.strerror})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except PermissionError:
            raise UsageError(f"port {port} on {host} needs privileges this user does not "
                             "have; use a port above 1023") from None
        except OSError as exc:
            if exc.errno in (98, 48, 10048):  # EADDRINUSE (Linux, macOS, Windows)
                raise UsageError(f"port {port} on {host} is already in use (another "
                                 "skytwin serve?); stop it or give --port") from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _check_tls(cert, key) -> None:
    """Both or neither, readable, PEM, and the key belongs to the certificate."""
    import ssl
    if (cert is None) != (key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    if cert is None:
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        why = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(why) or "key values mismatch" in str(exc):
            raise UsageError(f"--tls-key {key} does not belong to the certificate "
                             f"{cert}") from None
        raise UsageError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate "
                         f"and private key ({why})") from None


def _db_arg(text):
    """An argparse type: a PostgreSQL URL (kept as text) or an SQLite file path."""
    if text.startswith(("postgresql://", "postgres://")):
        return text
    return Path(text)


def _db_shown(db) -> str:
    """``db`` for printing (a URL's password masked)."""
    from skytwin.server.pgstore import _redact_dsn
    return _redact_dsn(db) if isinstance(db, str) else str(db)


def _check_db(path) -> None:
    if isinstance(path, str) and path.startswith(("postgresql://", "postgres://")):
        return    # checked when the store connects (one clear error line)
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"--db {p} is a folder; give a database file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--db {p}: folder {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"--db {p}: not writable (permission denied)")


# ------------------------------------------------------------------------ progress
def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Status:
    """One status line on stderr for slow steps, on a terminal only.

    ``with status.step("reading city.geojson (14 MB)"):`` shows the step and its elapsed
    seconds (refreshed twice a second by a small thread), then ``... done in 9.1 s``.
    ``status.detail(done, total)`` is a ``progress(done, total)`` callback for the
    kernels that report it (rasterization, fleet planning): it adds ``done/total (%)``.
    Disabled (silent) with ``--json``, ``--quiet`` or when stderr is not a terminal.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = bool(enabled) and _stderr_is_tty()
        self._lock = threading.Lock()
        self._text = ""
        self._detail = ""
        self._t0 = 0.0

    def _draw(self, end: str = "") -> None:
        el = time.perf_counter() - self._t0
        extra = f" {self._detail}" if self._detail else ""
        sys.stderr.write(f"\r\033[K{self._text}...{extra} {el:.0f} s{end}")
        sys.stderr.flush()

    @contextlib.contextmanager
    def step(self, text: str):
        if not self.enabled:
            yield self
            return
        self._text, self._detail, self._t0 = text, "", time.perf_counter()
        stop = threading.Event()

        def tick():
            while not stop.wait(0.5):
                with self._lock:
                    self._draw()
        with self._lock:
            self._draw()
        th = threading.Thread(target=tick, daemon=True, name="skytwin-progress")
        th.start()
        try:
            yield self
        except BaseException:
            stop.set()
            th.join()
            sys.stderr.write("\n")
            raise
        stop.set()
        th.join()
        el = time.perf_counter() - self._t0
        sys.stderr.write(f"\r\033[K{self._text}: done in {el:.1f} s\n")
        sys.stderr.flush()

    def detail(self, done: int, total: int) -> None:
        """``progress(done, total)`` callback: shown on the current step's line."""
        if not self.enabled or total <= 0:
            return
        self._detail = f"{done}/{total} ({int(100 * done / total)}%)"


def _describe_inputs(paths) -> str:
    paths = [Path(p) for p in paths]
    size = sum(p.stat().st_size for p in paths if p.exists())
    names = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
    return f"reading {names} ({size / 1e6:.1f} MB)"


# ------------------------------------------------------------------------------ twin
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
    for line in audit_lines(summary.get("audit", [])):
        print(line)
    for w in audit_warnings(summary.get("audit", [])):
        print(f"warning: {w}", file=sys.stderr)


def audit_lines(audit: list) -> list[str]:
    """The build's audit, one block per source file (human output)."""
    out = []
    for a in audit:
        heights = ", ".join(f"{k} {v}" for k, v in sorted(a.get("heights", {}).items()))
        out.append(f"audit            {Path(a['path']).name}: {a['obstacles']} obstacles, "
                   f"{a['repaired']} repaired, {a['hulled']} hulled, "
                   f"{a['skipped']} skipped")
        out.append(f"  heights from   {heights or '-'}")
        for k, v in sorted(a.get("height_fields", {}).items(), key=lambda kv: -kv[1])[:6]:
            out.append(f"    {v:6d} x attribute {k}")
        for k, v in sorted(a.get("repairs", {}).items(), key=lambda kv: -kv[1])[:6]:
            out.append(f"    {v:6d} x repair: {k}")
        for n in a.get("notes", []):
            out.append(f"  note           {n}")
    return out


def audit_warnings(audit: list) -> list[str]:
    """One line per file where something was assumed, enclosed or repaired."""
    out = []
    for a in audit:
        what = []
        if a.get("unknown_heights"):
            what.append(f"{a['unknown_heights']} obstacle(s) with no height in the data: "
                        f"{a['unknown_height_policy']}")
        if a.get("hulled"):
            what.append(f"{a['hulled']} obstacle(s) with no usable face enclosed by the "
                        "hull of their vertices")
        if a.get("repaired"):
            what.append(f"{a['repaired']} obstacle(s) repaired")
        if what:
            out.append(f"{Path(a['path']).name}: " + "; ".join(what)
                       + " (--strict makes this an error)")
    return out


def _cmd_twin_build(args) -> int:
    from skytwin.airspace.errors import AirspaceError
    from skytwin.airspace.io import load_city
    from skytwin.airspace.twin import build_twin

    status = _Status(not (args.json or args.quiet))
    try:
        paths = [str(p) for p in args.path] if len(args.path) > 1 else str(args.path[0])
        t_read = time.perf_counter()
        with status.step(_describe_inputs(args.path)):
            result = load_city(paths, crs=args.crs, strict=args.strict,
                               unknown_height_m=args.unknown_height,
                               height_field=args.height_field,
                               ground_field=args.ground_field)
        read_s = time.perf_counter() - t_read
        with status.step(f"building twin ({len(result.buildings)} buildings)"):
            twin = build_twin(result, resolution_m=args.resolution, layer_m=args.layer,
                              clearance_m=args.clearance, progress=status.detail)
        if args.out:
            with status.step(f"saving twin to {args.out}"):
                twin.save(args.out)
        if args.png:
            from skytwin.planner.render import render_twin_png
            with status.step(f"rendering {args.png}"):
                render_twin_png(twin, args.png)
        if args.geojson:
            from skytwin.planner.export import twin_geojson
            with status.step(f"writing {args.geojson}"):
                _write_json(args.geojson, twin_geojson(twin))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    summary = _full_summary(twin)
    summary["read_s"] = read_s
    if args.out:
        summary["saved_to"] = str(args.out)
    _print_summary(summary, args.json)
    return 0


def _cmd_twin_info(args) -> int:
    try:
        twin = _load_twin(args.file)
    except (OSError, ValueError) as exc:
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


# ----------------------------------------------------------------------------- route
def _lonlat_alt(text: str, name: str):
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3):
        raise UsageError(f"--{name} must be LON,LAT or LON,LAT,ALT (degrees, metres AMSL), "
                         f"got {text!r}")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--{name} must be LON,LAT or LON,LAT,ALT (numbers), "
                         f"got {text!r}") from None
    if not all(math.isfinite(v) for v in vals) or not (-180 <= vals[0] <= 180
                                                       and -90 <= vals[1] <= 90):
        raise UsageError(f"--{name}: longitude must be within -180..180 and latitude "
                         f"within -90..90 degrees, got {text!r}")
    return (vals[0], vals[1]), (vals[2] if len(vals) == 3 else None)


def _parse_time(text: str | None, name: str = "--depart") -> float:
    import datetime as dt
    if text is None:
        return time.time()
    try:
        v = float(text)
        if math.isfinite(v):
            return v
    except ValueError:
        pass
    try:
        d = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{name} must be Unix seconds or ISO 8601 "
                         f"(e.g. 2026-11-22T11:00:00Z), got {text!r}") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    return d.timestamp()


def _twin_from_args(args, status: _Status):
    from skytwin.airspace.io import load_city
    from skytwin.airspace.twin import build_twin
    if getattr(args, "twin", None):
        with status.step(f"loading twin {Path(args.twin).name}"):
            return _load_twin(args.twin)
    with status.step(_describe_inputs([args.city])):
        result = load_city(str(args.city))
    with status.step(f"building twin ({len(result.buildings)} buildings)"):
        return build_twin(result, progress=status.detail)


def _write_json(path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=1))


def _cmd_route(args) -> int:
    from skytwin.airspace.ed269 import load_ed269
    from skytwin.airspace.errors import AirspaceError
    from skytwin.airspace.zones import ZoneLayer
    from skytwin.planner.export import route_czml, route_geojson, route_json, twin_geojson
    from skytwin.planner.route import Planner, RouteRequest

    status = _Status(not args.json)
    try:
        start, s_alt = _lonlat_alt(args.from_, "from")
        goal, g_alt = _lonlat_alt(args.to, "to")
        depart = _parse_time(args.depart)
        zones_in = load_ed269(args.zones) if args.zones else []
        if args.twin:
            _check_twin_file(args.twin)
        derive = args.derive_zones or args.zone_rules is not None
        rules = None      # twin files keep the objects' tags and areas (issue 13)
        if derive:
            from skytwin.airspace.derived import load_derived_rules
            rules = load_derived_rules(args.zone_rules)
        twin = _twin_from_args(args, status)
        zones = ZoneLayer(twin.frame)
        for z in zones_in:
            zones.add(z)
        derived = []
        if derive:
            from skytwin.airspace.derived import blocking_zones, derive_zones
            derived = derive_zones([*twin.buildings, *twin.areas], twin.frame, rules)
            for z in blocking_zones(derived, args.authorisation):
                zones.replace(z)
        with status.step("ground risk"):
            risk = _risk_layer(args, twin)
        with status.step("planning the route"):
            route = Planner(twin, zones, risk=risk, derived=derived).plan(RouteRequest(
                start, goal, depart_s=depart, flight_id="cli", start_alt_amsl_m=s_alt,
                goal_alt_amsl_m=g_alt, risk_weight=args.risk_weight,
                max_band=args.max_band))
        period = route.exposure["period"]
        if args.geojson:
            near = twin.index.query(_route_box(route, 60.0))
            extra = twin_geojson(twin, {twin.buildings[n].id for n in near})["features"]
            _write_json(args.geojson, route_geojson(route, extra, derived=derived,
                                                    risk=risk, period=period,
                                                    frame=twin.frame))
        if args.czml:
            _write_json(args.czml, route_czml(route))
        if args.png:
            from skytwin.planner.render import render_route_png
            render_route_png(twin, route, args.png, zones=zones.local_zones(
                route.trajectory.t_start_s, route.trajectory.t_end_s), risk=risk,
                derived=derived, period=period)
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    d = route_json(route)
    if args.json:
        print(json.dumps(d))
    else:
        _print_route(d)
    return 0


def _risk_layer(args, twin):
    """The ground-risk layer of a route: the population file, else the estimate."""
    from skytwin.airspace.risk import estimate_population, read_population
    if args.population:
        return read_population(args.population, twin.frame, twin.grid)
    return estimate_population(twin.buildings, twin.grid)


def _cmd_zones_derive(args) -> int:
    from skytwin.airspace.derived import (
        category_counts,
        derive_zones,
        derived_ed269,
        load_derived_rules,
    )
    from skytwin.airspace.errors import AirspaceError
    from skytwin.airspace.io import load_city

    status = _Status(not args.json)
    try:
        rules = load_derived_rules(args.rules)
        if str(args.path).endswith(".npz"):    # a saved twin keeps the tags (issue 13)
            with status.step(f"loading twin {Path(args.path).name}"):
                result = _load_twin(args.path)
        else:
            with status.step(_describe_inputs([args.path])):
                result = load_city(str(args.path))
        derived = derive_zones([*result.buildings, *result.areas], result.frame, rules)
        if args.ed269:
            _write_json(args.ed269, derived_ed269(derived))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    counts = category_counts(derived)
    if args.json:
        print(json.dumps({"source": str(args.path), "rules": rules.path,
                          "objects": len(result.buildings), "count": len(derived),
                          "counts": counts, "zones": [d.to_dict() for d in derived]}))
        return 0
    print(f"{len(derived)} derived zones from {len(result.buildings)} objects of "
          f"{Path(args.path).name} (rules {Path(rules.path).name})")
    print("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    for d in derived:
        print(f"  {d.zone.id:<40} {d.category:<16} {d.matched:<28} "
              f"buffer {d.buffer_m:g} m  {d.zone.name}")
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
    ex = d.get("exposure")
    if ex:
        print(f"ground risk      {ex['people_overflown']:.1f} people/km2 x km overflown "
              f"({ex['period']}), worst SORA band {ex['worst_band_name']} (iGRC "
              f"{ex['igrc']}), risk weight {ex['risk_weight']:g}")
        for z in ex["derived_zones_near"]:
            print(f"  derived zone   {z['id']} ({z['category']}) at {z['distance_m']:.0f} m")
        for w in ex["warnings"]:
            print(f"  warning        {w}")
    print("  t [s]      lon [deg]      lat [deg]  alt AMSL [m]  alt AGL [m]")
    for w in d["waypoints"]:
        print(f"  {w['t_s']:8.2f}  {w['lon_deg']:.9f}  {w['lat_deg']:.9f}  "
              f"{w['alt_amsl_m']:10.2f}  {w['alt_agl_m']:10.2f}")


# ----------------------------------------------------------------------------- fleet
def _cmd_fleet(args) -> int:
    """Plan a delivery fleet over a city, detect its conflicts, resolve them, export."""
    if args.ray is not None:
        return _cmd_fleet_day(args)
    from skytwin.airspace.errors import AirspaceError
    from skytwin.fixtures.traffic import city_options, city_scenario
    from skytwin.planner.conflicts import Separation, detect
    from skytwin.planner.deconflict import SolveParams, deconflict, fcfs
    from skytwin.planner.export import (
        conflict_positions,
        conflicts_geojson,
        trajectories_czml,
        trajectories_geojson,
    )

    status = _Status(not args.json)
    try:
        depart0 = _parse_time(args.depart)
        if args.twin:
            _check_twin_file(args.twin)
        twin = _twin_from_args(args, status)
        with status.step(f"planning {args.flights} flights"):
            flights = city_scenario(twin, args.flights, seed=args.seed,
                                    duration_s=args.duration, t0_s=depart0,
                                    progress=status.detail)
        sep = Separation()
        before = detect(flights, sep)
        opts = city_options(twin)
        t0 = time.perf_counter()
        with status.step(f"resolving {len(before)} conflicts ({args.method})"):
            if args.method == "fcfs":
                res = fcfs(flights, sep=sep, options=opts)
            else:
                res = deconflict(flights, sep=sep, options=opts,
                                 params=SolveParams(max_time_in_seconds=args.budget,
                                                    num_workers=2, random_seed=args.seed))
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
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
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


def _ray_mode(text: str) -> str:
    """``--ray``: off (same windowed pipeline in this process), local, auto or an address."""
    t = text.strip()
    if t in ("off", "local", "auto") or t.startswith("ray://"):
        return t
    host, sep, port = t.rpartition(":")
    if sep and host and port.isdigit() and 0 < int(port) < 65536:
        return t
    raise argparse.ArgumentTypeError(
        f"expected off, local, auto or a cluster address HOST:PORT or ray://HOST:PORT, "
        f"got {text!r}")


def _cmd_fleet_day(args) -> int:
    """``fleet --ray``: a fleet-day planned and deconflicted window by window
    (:mod:`skytwin.planner.fleetday`), in this process (``off``) or over Ray."""
    from skytwin.airspace.errors import AirspaceError
    from skytwin.fixtures.traffic import city_options
    from skytwin.planner import fleetday
    from skytwin.planner.conflicts import Separation

    status = _Status(not args.json)
    executor = None
    try:
        drawn = [f"--{k}" for k in ("geojson", "czml", "png") if getattr(args, k)]
        if drawn:
            raise UsageError(f"{', '.join(drawn)} cannot be used with --ray (exports are for "
                             "the one-piece pipeline): drop them or drop --ray")
        depart0 = _parse_time(args.depart)
        if args.twin:
            _check_twin_file(args.twin)
        if args.ray != "off":
            from skytwin.server.fleet_ray import RayUnavailableError, check_address
            try:
                check_address(args.ray)
            except RayUnavailableError as exc:
                raise UsageError(str(exc)) from None
        twin = _twin_from_args(args, status)
        spec = fleetday.FleetDaySpec(args.flights, seed=args.seed, duration_s=args.duration,
                                     t0_s=depart0)
        params = fleetday.WindowParams(method=args.method, random_seed=args.seed,
                                       min_window_s=args.window)
        t0 = time.perf_counter()
        if args.ray == "off":
            executor = fleetday.LocalExecutor(twin)
        else:
            from skytwin.server.fleet_ray import RayExecutor, RayUnavailableError
            with status.step(f"starting Ray ({args.ray})"):
                try:
                    executor = RayExecutor(twin, args.ray, num_cpus=args.ray_cpus)
                except RayUnavailableError as exc:
                    raise UsageError(str(exc)) from None
        t_ray = time.perf_counter()
        with status.step(f"planning {args.flights} flights"):
            flights = fleetday.plan_day(twin, executor, spec, progress=status.detail)
        t_plan = time.perf_counter()
        sep = Separation()
        with status.step(f"resolving {len(flights)} flights by windows ({args.method})"):
            res = fleetday.deconflict_day(flights, executor, sep, city_options(twin), params,
                                          progress=status.detail)
        t_end = time.perf_counter()
        cache = (executor.numba_cache_stats() if hasattr(executor, "numba_cache_stats")
                 else None)
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    finally:
        if executor is not None and hasattr(executor, "close"):
            executor.close()
    rep = res.report
    out = {"flights": len(flights), "asked": args.flights, "ray": args.ray,
           "method": args.method, "status": res.status,
           "residual": len(rep.residual_conflicts), "verifier_ok": bool(rep.ok),
           "unplaced": res.unplaced,
           "total_delay_s": float(sum(c.delay_s for c in res.choices.values())),
           "relevelled": sum(c.layer_shift != 0 for c in res.choices.values()),
           "windows": res.stats["windows"], "window_s": round(res.stats["window_s"], 1),
           "ray_start_s": round(t_ray - t0, 2), "plan_s": round(t_plan - t_ray, 2),
           "deconflict_s": round(t_end - t_plan, 2), "numba_cache": cache}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"flights          {out['flights']} planned ({args.flights} asked) in "
              f"{out['plan_s']:.1f} s ({'this process' if args.ray == 'off' else 'Ray ' + args.ray})")
        print(f"resolution       {args.method} in {out['windows']} windows of "
              f"{out['window_s']:.0f} s: residual {out['residual']} (independent verifier), "
              f"{len(res.unplaced)} unplaced, total delay {out['total_delay_s']:.0f} s, "
              f"{out['relevelled']} re-levelled, {out['deconflict_s']:.1f} s")
        if cache:
            print(f"numba cache      workers loaded {sum(c['hits'] for c in cache)} kernels "
                  f"from the cache, compiled {sum(c['misses'] for c in cache)}")
        for fid, why in list(res.unplaced.items())[:5]:
            print(f"  unplaced {fid}: {why}")
    return 0 if out["residual"] == 0 and rep.ok else 1


# ------------------------------------------------------------------------------ demo
DEMO_FROM = "24.94030,60.17150"   # Rautatientori (Railway Square), Helsinki
DEMO_TO = "24.95240,60.16760"     # Kauppatori (Market Square), Helsinki


def _cmd_demo(args) -> int:
    """Build the bundled city's twin, then plan, check and export one route across it."""
    out = Path(args.out)
    try:
        out.mkdir(exist_ok=True)
    except OSError as exc:
        return _fail(args, exc)
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
def _check_serve(args) -> None:
    """Everything ``serve`` can check before it builds a twin or creates a database."""
    from skytwin.server.auth import load_tokens
    _check_tls(args.tls_cert, args.tls_key)
    _check_db(args.db)
    load_tokens(args.auth)
    if args.limits is not None:
        from skytwin.server.limits import load_limits
        args.limits_loaded = load_limits(args.limits)
    if args.twin:
        _check_twin_file(args.twin)
    try:
        socket.getaddrinfo(args.host, args.port or None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"--host {args.host!r} does not resolve "
                         f"({getattr(exc, 'strerror', None) or exc})") from None
    _check_port_free(args.host, args.port)
    args.web_port = _web_port(args)
    if args.web_port:
        if args.web_port == args.port:
            raise UsageError(f"--web {args.web_port} is the gRPC --port; give another")
        _check_port_free(args.host, args.web_port)


def _web_port(args):
    """The web map's port: ``--web PORT``, ``off`` (None), or by default
    :data:`~skytwin.server.web.DEV_WEB_PORT` beside the default gRPC port and any free
    port (0) beside another one (so that several servers never fight over one port)."""
    from skytwin.server.web import DEV_WEB_PORT
    if args.web == "off":
        return None
    if args.web is not None:
        return args.web
    return DEV_WEB_PORT if args.port == 50051 else 0


def _web_arg(text):
    """An argparse type: a port number or ``off``."""
    return "off" if text.strip().lower() == "off" else _port(text)


def _cmd_serve(args) -> int:
    """Run the gRPC service until Ctrl-C / SIGTERM."""
    import asyncio
    import logging

    from skytwin.airspace.errors import AirspaceError
    from skytwin.server.app import ServerConfig
    from skytwin.server.auth import DEV_TOKENS

    try:
        _check_serve(args)
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    # The server is one process of Python threads (event loop, bookings, store writer,
    # planning dispatch) sharing one GIL; a thread back from I/O or a lock waits for
    # the holder to give the GIL up, forced every switch interval. 1 ms instead of
    # CPython's 5 ms: +4.7 % SubmitFlight OK/s in the load test, 4 of 4 pairs in
    # alternation (benchmarks/RESULTS.md, scale part 12).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    host = args.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"        # gRPC wants [v6]:port
    cfg = ServerConfig(city=args.city, twin=args.twin, db=args.db, auth=args.auth,
                       host=host, port=args.port, tls_cert=args.tls_cert,
                       tls_key=args.tls_key, workers=args.workers,
                       plan_processes=args.plan_processes,
                       zone_rules=args.zone_rules, population=args.population)
    if args.limits is not None:
        cfg.limits = args.limits_loaded

    def ready(port, web=None):
        scheme = "TLS" if args.tls_cert else "plaintext"
        print(f"skytwin serving on {host}:{port} ({scheme}); db {_db_shown(args.db)}",
              flush=True)
        if Path(args.auth).resolve() == DEV_TOKENS.resolve():
            print(f"auth: DEVELOPMENT tokens from {DEV_TOKENS} (never use in production)",
                  flush=True)
        else:
            print(f"auth: tokens from {args.auth}", flush=True)
        if web is not None:
            print(f"map: {web.url}", flush=True)

    try:
        from skytwin.server.web import serve_with_web
        asyncio.run(serve_with_web(cfg, args.web_port, on_ready=ready))
    except (AirspaceError, OSError, ValueError) as exc:
        return _fail(args, exc)
    return 0


# ---------------------------------------------------------------------------- client
def _floats(text, n, name, form):
    try:
        vals = [float(v) for v in str(text).split(",")]
    except ValueError:
        vals = []
    if len(vals) != n or not all(math.isfinite(v) for v in vals):
        raise UsageError(f"{name} must be {form} (numbers), got {text!r}")
    return vals


def _client_box(text):
    vals = _floats(text, 4, "--box", "MIN_LON,MIN_LAT,MAX_LON,MAX_LAT")
    from skytwin.v1 import airspace_pb2 as apb
    return apb.LonLatBox(min_lon_deg=vals[0], min_lat_deg=vals[1], max_lon_deg=vals[2],
                         max_lat_deg=vals[3])


def _client_alt(text, default_ref="AGL"):
    """'60' / '60:AGL' / '60:AMSL' -> Altitude message."""
    from skytwin.v1 import airspace_pb2 as apb
    v, _, ref = text.partition(":")
    ref = (ref or default_ref).upper()
    if ref not in ("AGL", "AMSL"):
        raise UsageError(f"altitude reference must be AGL or AMSL, got {ref!r}")
    (value,) = _floats(v, 1, "an altitude", "M[:AGL|AMSL]")
    return apb.Altitude(value_m=value, reference=getattr(apb, f"ALTITUDE_REFERENCE_{ref}"))


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
    if getattr(args, "risk_weight", None):
        r.risk_weight = args.risk_weight
    if getattr(args, "max_band", None):
        r.max_band = args.max_band
    return r


def _client_zone(args):
    from skytwin.server.convert import timestamp
    from skytwin.v1 import airspace_pb2 as apb
    from skytwin.v1 import zones_pb2 as zpb
    z = zpb.Zone(id=args.id, name=args.name or "", reason=args.reason or "",
                 authority_name=args.authority or "",
                 lower=_client_alt(args.lower), upper=_client_alt(args.upper))
    if args.circle:
        lon, lat, r = _floats(args.circle, 3, "--circle", "LON,LAT,RADIUS_M")
        z.circle.centre.CopyFrom(apb.LonLat(lon_deg=lon, lat_deg=lat))
        z.circle.radius_m = r
    elif args.polygon:
        for pt in args.polygon.split(";"):
            lon, lat = _floats(pt, 2, "--polygon", "'LON,LAT;LON,LAT;...'")
            z.polygon.vertices.append(apb.LonLat(lon_deg=lon, lat_deg=lat))
    else:
        raise UsageError("give --circle LON,LAT,RADIUS_M or --polygon 'LON,LAT;LON,LAT;...'")
    if args.active_from:
        z.active_from.CopyFrom(timestamp(_parse_time(args.active_from, '--active-from')))
    if args.active_until:
        z.active_until.CopyFrom(timestamp(_parse_time(args.active_until, '--active-until')))
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
        lo, hi = _floats(args.band, 2, "--band", "LO,HI")
        req = apb.QueryBlockedCodesRequest(box=_client_box(args.box), z_lo_amsl_m=lo,
                                           z_hi_amsl_m=hi, clearance_m=args.clearance)
        if args.time:
            req.time.CopyFrom(timestamp(_parse_time(args.time, '--time')))
        return a.QueryBlockedCodes(req)
    if cmd == "risk":
        req = apb.QueryGroundRiskRequest(include_empty=args.all)
        if args.code:
            req.grid_code = args.code
        else:
            req.box.CopyFrom(_client_box(args.box))
        return a.QueryGroundRisk(req)
    if cmd == "plan":
        return f.PlanRoute(fpb.PlanRouteRequest(route=_client_route(args)))
    if cmd == "submit":
        req = fpb.SubmitFlightRequest(request_id=args.request_id,
                                      plan_id=args.plan_id or "")
        if bool(args.from_) != bool(args.to):
            raise UsageError("give both --from and --to (or neither, with --plan-id)")
        if args.from_:
            req.route.CopyFrom(_client_route(args))
        elif not args.plan_id:
            raise UsageError("give --from and --to, or --plan-id with the plan_id printed "
                             "by `skytwin client plan`")
        return f.SubmitFlight(req)
    if cmd == "batch":
        pairs = [p.split("/") for p in args.pair]
        for p, pair in zip(args.pair, pairs, strict=True):
            if len(pair) != 2:
                raise UsageError(f"--pair must be LON,LAT/LON,LAT, got {p!r}")
        routes = [_client_route(args, *pair) for pair in pairs]
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
        return f.CancelFlight(fpb.CancelFlightRequest(flight_id=args.flight_id,
                                                      reason=args.reason))
    if cmd == "watch":
        req = cpb.WatchRequest()
        if args.since is not None:
            req.since_sequence = args.since
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
            req.z_lo_amsl_m, req.z_hi_amsl_m = _floats(args.band, 2, "--band", "LO,HI")
            req.has_band = True
        if args.start:
            req.start_time.CopyFrom(timestamp(_parse_time(args.start, '--start')))
        if args.end:
            req.end_time.CopyFrom(timestamp(_parse_time(args.end, '--end')))
        return z.QueryZones(req)
    if zc == "import":
        return z.ImportEd269(zpb.ImportEd269Request(ed269_json=Path(args.file).read_text(),
                                                    replace_existing=args.replace))
    if zc == "export":
        return z.ExportEd269(zpb.ExportEd269Request(country=args.country or ""))
    if zc == "derived":
        req = zpb.QueryDerivedZonesRequest(include_disabled=args.include_disabled,
                                           category=args.category or "")
        if args.code:
            req.grid_code = args.code
        elif args.box:
            req.box.CopyFrom(_client_box(args.box))
        return z.QueryDerivedZones(req)
    if zc == "override":
        req = zpb.OverrideDerivedZoneRequest(zone_id=args.zone_id, reason=args.reason or "",
                                             category=args.category or "",
                                             reset=args.reset)
        if args.enabled is not None:
            req.enabled = args.enabled
        if (args.lower is None) != (args.upper is None):
            raise UsageError("give both --lower and --upper, or neither")
        if args.lower is not None:
            req.lower.CopyFrom(_client_alt(args.lower))
            req.upper.CopyFrom(_client_alt(args.upper))
        return z.OverrideDerivedZone(req)
    raise ValueError(f"unknown client command {cmd!r}")


def _seconds(ts) -> float:
    return ts.seconds + ts.nanos * 1e-9


def route_from_proto(r, flight_id: str | None = None) -> dict:
    """A ``skytwin.v1.Route`` in the one route format (``docs/route.schema.json``)."""
    wps = []
    t0 = _seconds(r.waypoints[0].time) if r.waypoints else 0.0
    for w in r.waypoints:
        t = _seconds(w.time)
        wps.append({"lon_deg": round(w.position.lon_deg, 9),
                    "lat_deg": round(w.position.lat_deg, 9),
                    "alt_amsl_m": round(w.alt_amsl_m, 2), "alt_agl_m": round(w.alt_agl_m, 2),
                    "t_s": round(t - t0, 3), "time_unix_s": round(t, 3)})
    out = {"waypoints": wps, "length_m": round(r.length_m, 2),
           "duration_s": round(_seconds(r.duration), 2), "clearance_m": r.clearance_m,
           "straight_m": round(r.straight_m, 2), "search_level": r.search_level,
           "depart_unix_s": round(t0, 3),
           "arrive_unix_s": wps[-1]["time_unix_s"] if wps else round(t0, 3),
           "zones_considered": list(r.zones_considered)}
    if flight_id:
        out["flight_id"] = flight_id
    return out


def flight_from_proto(f) -> dict:
    """A ``skytwin.v1.Flight`` in the one flight format (``docs/route.schema.json``)."""
    from skytwin.v1 import flights_pb2 as fpb
    status = fpb.FlightStatus.Name(f.status).removeprefix("FLIGHT_STATUS_").lower()
    out = {"flight_id": f.flight_id, "operator_id": f.operator_id,
           "request_id": f.request_id, "status": status,
           "route": route_from_proto(f.route, f.flight_id),
           "delay_s": round(_seconds(f.delay), 3), "layer_shift": f.layer_shift,
           "priority": f.priority,
           "created_unix_s": round(_seconds(f.created_time), 3)
           if f.HasField("created_time") else None,
           "cancelled_unix_s": round(_seconds(f.cancelled_time), 3)
           if f.HasField("cancelled_time") else None}
    if "cancel_reason" in f.DESCRIPTOR.fields_by_name:
        out["cancel_reason"] = f.cancel_reason
    return out


def _change_from_proto(ch, dump) -> dict:
    from skytwin.v1 import changes_pb2 as cpb
    out = {"sequence": ch.sequence,
           "kind": cpb.ChangeKind.Name(ch.kind).removeprefix("CHANGE_KIND_").lower(),
           "time_unix_s": round(_seconds(ch.time), 3), "actor": ch.actor,
           "affected_flight_ids": list(ch.affected_flight_ids)}
    if "reason" in ch.DESCRIPTOR.fields_by_name:
        out["reason"] = ch.reason
    if ch.HasField("zone"):
        out["zone"] = dump(ch.zone)
    if ch.HasField("flight"):
        out["flight"] = flight_from_proto(ch.flight)
    return out


def _response_json(msg, dump) -> dict:
    """A response as JSON, with its routes and flights in the one route format."""
    out = dump(msg)
    fields = msg.DESCRIPTOR.fields_by_name
    if "route" in fields and msg.HasField("route"):
        out["route"] = route_from_proto(msg.route)
        if msg.route.HasField("exposure"):    # issue 13: the route JSON's exposure
            ex = dump(msg.route.exposure)
            ex["unit"] = ex.pop("people_overflown_unit", "")
            ex["derived_zones_near"] = [dict(n, id=n.pop("zone_id", ""))
                                        for n in ex.get("derived_zones_near", [])]
            ex.setdefault("people_overflown", 0.0)
            ex.setdefault("worst_band", 0)
            out["route"]["exposure"] = ex
    if "flight" in fields and msg.HasField("flight"):
        out["flight"] = flight_from_proto(msg.flight)
    if "flights" in fields:
        out["flights"] = [flight_from_proto(f) for f in msg.flights]
    return out


def _cmd_client(args) -> int:
    """Call one RPC and print the response as JSON (streams: one JSON object a line).

    Errors (gRPC statuses and wrong arguments alike) are one JSON object on stderr,
    ``{"error": {"code": "NOT_FOUND", "message": "..."}}``, with exit code 2.
    """
    import grpc
    from google.protobuf.json_format import MessageToDict

    from skytwin.v1 import (
        airspace_pb2_grpc,
        changes_pb2_grpc,
        flights_pb2_grpc,
        zones_pb2_grpc,
    )
    from skytwin.v1 import changes_pb2 as cpb
    args.json = True        # the client always speaks JSON, errors included
    token = args.token or os.environ.get("SKYTWIN_TOKEN")
    try:
        if args.ca:
            creds = grpc.ssl_channel_credentials(Path(args.ca).read_bytes())
            channel = grpc.secure_channel(args.target, creds)
        else:
            channel = grpc.insecure_channel(args.target)
    except OSError as exc:
        return _fail(args, exc)
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
    # Ctrl-C: leave at once (main() exits with os._exit). Cancelling the call and closing
    # the channel wait on gRPC's core, which can block with a call in flight.
    interrupted = False
    try:
        out = _client_call(args, stubs)
        if args.rpc == "watch":
            n = 0
            try:
                for ch in out:
                    if ch.kind == cpb.CHANGE_KIND_UNSPECIFIED:
                        continue    # the server's "live from here" marker, not a change
                    print(json.dumps(_change_from_proto(ch, dump)), flush=True)
                    n += 1
                    if args.count and n >= args.count:
                        break
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.CANCELLED,
                                      grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
            except KeyboardInterrupt:
                interrupted = True
                raise
            finally:
                if not interrupted:
                    out.cancel()
            return 0
        if args.rpc == "zones" and args.zone_command == "export" and args.out:
            Path(args.out).write_text(out.ed269_json)
            print(json.dumps({"written": str(args.out)}))
            return 0
        print(json.dumps(_response_json(out, dump), indent=1))
        return 0
    except grpc.RpcError as exc:
        return _fail(args, RuntimeError(exc.details() or exc.code().name), exc.code().name)
    except BrokenPipeError:     # our stdout closed (`| head`): not a server error; main()
        raise
    except (OSError, ValueError) as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if not interrupted:
            channel.close()


# -------------------------------------------------------------------------- loadtest
def _cmd_loadtest(args) -> int:
    """Fleet load test of a running server; exit 1 when a check fails."""
    from skytwin.server.loadtest import (
        REMOTE_WARNING,
        LoadConfig,
        check_loopback,
        format_report,
        run_loadtest,
    )
    cfg = LoadConfig(target=args.target, drones=args.drones, concurrency=args.concurrency,
                     duration_s=args.duration, operators=args.operators, tokens=args.tokens,
                     seed=args.seed, max_requests=args.max_requests,
                     allow_remote=args.allow_remote, keep=args.keep)
    try:
        cfg.validate()
        if args.tokens:
            from skytwin.server.auth import load_tokens
            load_tokens(args.tokens)
        host, port = _split_target(args.target)
        _resolve(host, port, "--target host")
        try:
            check_loopback(args.target)
        except ValueError:
            print(REMOTE_WARNING.format(target=args.target), file=sys.stderr, flush=True)
        rep = run_loadtest(cfg)
    except (ValueError, ConnectionError, RuntimeError, OSError) as exc:
        return _fail(args, exc)
    if args.json:
        print(json.dumps(rep, default=str))
    else:
        print(format_report(rep))
    return 0 if rep["ok"] else 1


# -------------------------------------------------------------------------- simulate
def _cmd_simulate(args) -> int:
    """Fly a simulated fleet against a running server (issue 11); exit 1 on FAIL."""
    from skytwin.server.loadtest import REMOTE_WARNING, check_loopback
    from skytwin.server.simulate import config_from_args, format_report, run_simulation
    try:
        cfg = config_from_args(args)
        cfg.validate()
        host, port = _split_target(args.target)
        _resolve(host, port, "--target host")
        try:
            check_loopback(args.target)
        except ValueError:
            print(REMOTE_WARNING.format(target=args.target), file=sys.stderr, flush=True)
        rep = run_simulation(cfg)
    except (ValueError, ConnectionError, RuntimeError, OSError) as exc:
        return _fail(args, exc)
    if args.json:
        print(json.dumps(rep, default=str))
    else:
        print(format_report(rep))
    return 0 if rep["result"] == "PASS" else 1


def _fraction(text) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") \
            from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return v


def _add_simulate_parser(sub) -> None:
    sm = sub.add_parser("simulate", help="fly a simulated fleet with telemetry, faults and "
                        "a pop-up zone against a running server",
                        description="Book N flights, fly them against a running SkyTwin "
                        "server streaming telemetry at 1 Hz with noise, inject faults "
                        "(drift, climb, hold, late departure, lost link) on a seeded "
                        "share, close airspace with a pop-up zone at 45 % of the run, "
                        "follow the advisories, and check detection, false alarms, "
                        "ingestion latency and real losses of separation.")
    sm.add_argument("--target", required=True, type=_loadtest_target, metavar="HOST:PORT",
                    help="the server")
    sm.add_argument("--drones", type=_count, required=True, metavar="N",
                    help="flights to book and fly")
    sm.add_argument("--duration", type=_positive, required=True, metavar="S",
                    help="flying time [s] (real time)")
    sm.add_argument("--fault-share", type=_fraction, default=0.1, metavar="F",
                    help="share of drones given a fault")
    sm.add_argument("--seed", type=int, default=0, metavar="K",
                    help="seed of every random choice")
    sm.add_argument("--token", action="append", default=[], metavar="T",
                    help="operator token (repeat for several operators; default: the "
                    "development operator tokens)")
    sm.add_argument("--regulator-token", default=None, metavar="T",
                    help="regulator token for the pop-up zone (default: the development "
                    "regulator when no --token is given; none: no pop-up zone)")
    sm.add_argument("--batch", type=_count, default=20, metavar="N",
                    help="position reports per stream message")
    sm.add_argument("--json", action="store_true", help="print one JSON object")
    sm.set_defaults(func=_cmd_simulate)


# --------------------------------------------------------------------------- parsers
def _add_loadtest_parser(sub) -> None:
    lt = sub.add_parser("loadtest", help="fleet load test of a running server (loopback "
                        "unless --allow-remote; cleans up after itself)",
                        description="Drive a running SkyTwin server with simulated drone "
                        "operators and a regulator, check the results through the API, "
                        "then cancel the flights and delete the zone the run created.")
    lt.add_argument("--target", required=True, type=_loadtest_target,
                    help="HOST:PORT of the server (127.0.0.0/8, localhost or ::1 unless "
                    "--allow-remote)")
    lt.add_argument("--allow-remote", action="store_true",
                    help="allow a target that is not on this machine: the run books and "
                    "cancels real flights and closes airspace there while it runs")
    lt.add_argument("--keep", action="store_true", help="leave the run's flights and "
                    "zone in the server (the report says how to remove them)")
    lt.add_argument("--drones", type=_count, default=100, help="simulated drones")
    lt.add_argument("--concurrency", type=_count, default=8,
                    help="concurrent client calls")
    lt.add_argument("--duration", type=_positive, default=10.0, help="load phase [s]")
    lt.add_argument("--operators", type=_count, default=None, help="simulated operators "
                    "(default: one per operator token)")
    lt.add_argument("--tokens", type=_in_file, metavar="FILE", default=None, help="TOML token file "
                    "(default: the development tokens)")
    lt.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    lt.add_argument("--max-requests", type=_count, default=200_000,
                    help="hard cap on load-phase calls")
    lt.add_argument("--json", action="store_true", help="print one JSON object")
    lt.set_defaults(func=_cmd_loadtest)


def _add_server_parsers(sub) -> None:
    """``serve`` and ``client ...`` (the gRPC service and its shell client)."""
    from skytwin.server.auth import DEV_TOKENS
    s = sub.add_parser("serve", help="run the gRPC service (bundled city by default)",
                       description="Run the SkyTwin gRPC service until Ctrl-C or SIGTERM.")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--city", type=_in_file, metavar="PATH", default=DEFAULT_CITY,
                     help="city model to build the twin from")
    src.add_argument("--twin", type=_in_file, metavar="FILE", default=None,
                     help="a twin saved by 'skytwin twin build --out' (instead of --city)")
    s.add_argument("--port", type=_port, default=50051, help="port (0: any free port)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind")
    s.add_argument("--db", type=_db_arg, metavar="FILE|URL", default=Path("skytwin.db"),
                   help="SQLite store (created if missing; its folder must exist), or "
                   "postgresql://USER@HOST:PORT/DB: several serve processes share one "
                   "airspace (server/pgstore.py)")
    s.add_argument("--auth", type=_in_file, metavar="FILE", default=DEV_TOKENS, help="TOML token file "
                   "(default: the development tokens; never in production)")
    s.add_argument("--tls-cert", type=_in_file, metavar="FILE", default=None, help="PEM certificate chain")
    s.add_argument("--tls-key", type=_in_file, metavar="FILE", default=None,
                   help="PEM private key of --tls-cert")
    s.add_argument("--workers", type=_count, default=4, help="planning threads")
    s.add_argument("--plan-processes", type=_non_negative_int, default=0, metavar="N",
                   help="plan routes in N worker processes forked from the server, which "
                        "share the twin read-only (e.g. one per core); 0: in the "
                        "server's planning threads (default)")
    s.add_argument("--web", type=_web_arg, metavar="PORT|off", default=None,
                   help="the live web map's port, same process and tokens (default: 8051 "
                        "beside the default --port 50051, else any free port; the URL is "
                        "printed as 'map: URL'; off: no map)")
    s.add_argument("--limits", type=_in_file, metavar="FILE", default=None,
                   help="limits on every request (JSON like fixtures/limits/"
                        "default_limits.json; default: that file)")
    s.add_argument("--zone-rules", type=_in_file, metavar="FILE", default=None,
                   help="derived-zone rules (issue 13; default: fixtures/rules/"
                   "derived_zones.json)")
    s.add_argument("--population", type=_in_file, metavar="FILE", default=None,
                   help="population file for the ground-risk layer (.csv points or .asc "
                   "grid, see airspace/risk.py; default: estimated from the model)")
    s.add_argument("--json", action="store_true",
                   help="errors as one JSON object on stderr")
    s.set_defaults(func=_cmd_serve)

    c = sub.add_parser("client", help="call the gRPC service (JSON output)",
                       description="Call one RPC of a running SkyTwin server and print "
                       "the response as JSON; errors are one JSON object on stderr.")
    c.add_argument("--target", type=_target, default="127.0.0.1:50051",
                   help="HOST:PORT of the server")
    c.add_argument("--token", default=None, help="bearer token (default: $SKYTWIN_TOKEN)")
    c.add_argument("--ca", type=_in_file, metavar="FILE", default=None,
                   help="CA certificate (PEM) for TLS (default: plaintext)")
    cs = c.add_subparsers(dest="rpc", required=True, metavar="RPC")
    cs.add_parser("info", help="GetTwinInfo: the twin served")
    e = cs.add_parser("encode", help="EncodeGridCode: the grid code of a point")
    e.add_argument("--at", required=True, metavar="LON,LAT", help="position [deg]")
    e.add_argument("--alt", required=True, metavar="M[:AMSL|AGL]",
                   help="altitude [m] and its reference (default AMSL)")
    e.add_argument("--res", type=_non_negative_int, default=0,
                   help="H3 resolution (0: the twin's)")
    e.add_argument("--layer", type=_non_negative, default=0.0,
                   help="altitude layer height [m] (0: the twin's)")
    d = cs.add_parser("decode", help="DecodeGridCode: the cell of a grid code")
    d.add_argument("code", help="grid code string")
    b = cs.add_parser("blocked", help="QueryBlockedCodes: blocked cells in a box")
    b.add_argument("--box", required=True, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                   help="area [deg]")
    b.add_argument("--band", required=True, metavar="LO,HI", help="altitude band [m AMSL]")
    b.add_argument("--time", default=None,
                   help="zones active at this time, Unix seconds or ISO 8601 (default: now)")
    b.add_argument("--clearance", type=_non_negative, default=0.0,
                   help="extra clearance [m]")
    for name, hlp in (("plan", "PlanRoute: a route preview (nothing is booked)"),
                      ("submit", "SubmitFlight: plan and book one flight"),
                      ("batch", "SubmitBatch: plan and book several flights together")):
        p = cs.add_parser(name, help=hlp)
        if name == "batch":
            p.add_argument("--pair", action="append", required=True,
                           metavar="LON,LAT/LON,LAT", help="one route (repeat)")
        else:
            need = name != "submit"     # submit: or --plan-id
            p.add_argument("--from", dest="from_", required=need, metavar="LON,LAT[,ALT]",
                           help="start [deg; optional pad altitude m AMSL]")
            p.add_argument("--to", required=need, metavar="LON,LAT[,ALT]", help="goal")
        if name == "submit":
            p.add_argument("--plan-id", default=None, metavar="ID",
                           help="book the plan held by `client plan` (its plan_id) without "
                                "planning again; --from/--to may then be left out (if "
                                "given, with --depart etc., they must repeat the plan's "
                                "request exactly: the server then plans again should the "
                                "plan have expired)")
        p.add_argument("--depart", default=None,
                       help="departure, Unix seconds or ISO 8601 (default: now)")
        p.add_argument("--risk-weight", type=_risk_weight, default=0.0, metavar="W",
                       help="trade length for ground risk (0: shortest; the exposure is "
                       "reported either way)")
        p.add_argument("--max-band", type=int, choices=range(1, 7), default=None,
                       metavar="B", help="highest SORA population band (1-6) to overfly")
        if name != "plan":
            p.add_argument("--request-id", required=True, help="idempotency key")
            p.add_argument("--max-delay", type=_non_negative, default=None,
                           help="accepted departure delay [s] (default: the server's, 600)")
            p.add_argument("--priority", type=_positive, default=None,
                           help="deconfliction weight (default: 1)")
    rk = cs.add_parser("risk", help="QueryGroundRisk: people per km2, SORA bands and "
                       "iGRC in a box or under a grid code (issue 13)")
    rg = rk.add_mutually_exclusive_group(required=True)
    rg.add_argument("--box", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                    help="area [deg]")
    rg.add_argument("--code", default=None, help="a grid code (its H3 cell)")
    rk.add_argument("--all", action="store_true", help="also cells with nobody")
    g = cs.add_parser("get", help="GetFlight")
    g.add_argument("flight_id", help="flight id")
    li = cs.add_parser("list", help="ListFlights")
    li.add_argument("--operator", default=None, help="operator id (regulators only)")
    li.add_argument("--status", choices=("accepted", "cancelled"), default=None,
                    help="only flights with this status (default: any)")
    li.add_argument("--page-size", type=_count, default=100, help="flights per page")
    li.add_argument("--page-token", default=None, help="next_page_token of the last page")
    ca = cs.add_parser("cancel", help="CancelFlight")
    ca.add_argument("flight_id", help="flight id")
    ca.add_argument("--reason", default="", help="why (required when a regulator cancels "
                    "an operator's flight; recorded and sent to the operator)")
    w = cs.add_parser("watch", help="ChangeService.Watch (one JSON object a line)")
    w.add_argument("--box", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                   help="only changes in this area (default: the whole twin)")
    w.add_argument("--since", type=_non_negative_int, default=None,
                   help="first replay the retained changes with a sequence number above "
                   "this one (0: all retained), then go live (default: live only)")
    w.add_argument("--count", type=_non_negative_int, default=0,
                   help="stop after N changes (0: never)")
    w.add_argument("--timeout", type=_positive, default=None,
                   help="stop after S seconds (default: never)")
    zo = cs.add_parser("zones", help="ZoneService: no-fly volumes")
    zs = zo.add_subparsers(dest="zone_command", required=True, metavar="COMMAND")
    for name in ("add", "update"):
        za = zs.add_parser(name, help="CreateZone" if name == "add" else "UpdateZone")
        za.add_argument("--id", required=True, help="zone id")
        za.add_argument("--circle", default=None, metavar="LON,LAT,RADIUS_M",
                        help="a circle (or --polygon)")
        za.add_argument("--polygon", default=None, metavar="'LON,LAT;LON,LAT;...'",
                        help="a polygon (or --circle)")
        za.add_argument("--lower", default="0:AGL", metavar="M[:AGL|AMSL]",
                        help="lower limit")
        za.add_argument("--upper", default="120:AGL", metavar="M[:AGL|AMSL]",
                        help="upper limit")
        za.add_argument("--active-from", default=None,
                        help="start, Unix seconds or ISO 8601 (default: always)")
        za.add_argument("--active-until", default=None,
                        help="end, Unix seconds or ISO 8601 (default: never)")
        za.add_argument("--name", default=None, help="name shown to users")
        za.add_argument("--reason", default=None, help="why the airspace is closed")
        za.add_argument("--authority", default=None, help="authority that closed it")
    zs.add_parser("list", help="ListZones")
    zd = zs.add_parser("derived", help="QueryDerivedZones: zones derived from the city "
                       "model (issue 13), by box or grid code")
    zd.add_argument("--box", default=None, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                    help="area [deg] (default: all)")
    zd.add_argument("--code", default=None, help="a grid code (its cell and layer)")
    zd.add_argument("--include-disabled", action="store_true",
                    help="also the zones a regulator disabled")
    zd.add_argument("--category", default=None,
                    choices=("restricted", "authorisation", "altitude-limited", "warning"),
                    help="only this category")
    zv = zs.add_parser("override", help="OverrideDerivedZone (regulators): disable, "
                       "re-categorise or re-band one derived zone (persisted)")
    zv.add_argument("zone_id", help="derived zone id (DZ-...)")
    en = zv.add_mutually_exclusive_group()
    en.add_argument("--disable", dest="enabled", action="store_false", default=None,
                    help="take the zone out of force")
    en.add_argument("--enable", dest="enabled", action="store_true",
                    help="put it in force again")
    zv.add_argument("--category", default=None,
                    choices=("restricted", "authorisation", "altitude-limited", "warning"),
                    help="new category")
    zv.add_argument("--lower", default=None, metavar="M[:AGL|AMSL]", help="new lower limit")
    zv.add_argument("--upper", default=None, metavar="M[:AGL|AMSL]", help="new upper limit")
    zv.add_argument("--reset", action="store_true", help="drop every override")
    zv.add_argument("--reason", default=None, help="why (required unless --reset)")
    for name in ("get", "delete"):
        zg = zs.add_parser(name, help=f"{name.capitalize()}Zone")
        zg.add_argument("zone_id", help="zone id")
    zq = zs.add_parser("query", help="QueryZones")
    zq.add_argument("--box", required=True, metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                    help="area [deg]")
    zq.add_argument("--band", default=None, metavar="LO,HI",
                    help="altitude band [m AMSL] (default: any)")
    zq.add_argument("--start", default=None, help="active after this time (default: any)")
    zq.add_argument("--end", default=None, help="active before this time (default: any)")
    zi = zs.add_parser("import", help="ImportEd269")
    zi.add_argument("file", type=_in_file, help="ED-269 JSON file")
    zi.add_argument("--replace", action="store_true", help="replace zones with the same id")
    zx = zs.add_parser("export", help="ExportEd269")
    zx.add_argument("--country", default=None, help="ISO country code (default: the twin's)")
    zx.add_argument("--out", type=_out_file, metavar="FILE", default=None,
                    help="write the JSON here (default: print it)")
    c.set_defaults(func=_cmd_client)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="skytwin", description=DESCRIPTION,
                epilog="Errors are one line on stderr with exit code 2 ({\"error\": "
                "{\"code\": ..., \"message\": ...}} with --json); Ctrl-C exits with 130.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    twin = sub.add_parser("twin", help="build and inspect airspace twins")
    tsub = twin.add_subparsers(dest="twin_command", required=True, metavar="COMMAND")
    b = tsub.add_parser("build", help="build a twin from a city model",
                        description="Read a city model and build its airspace twin.")
    b.add_argument("path", nargs="*", type=_in_file, default=[DEFAULT_CITY],
                   help="CityJSON / CityJSONSeq / CityGML / GeoJSON file(s) "
                        "(default: the bundled Helsinki centre)")
    b.add_argument("--resolution", type=_resolution, metavar="M", default=2.0,
                   help="horizontal voxel size [m], 0.1..100")
    b.add_argument("--layer", type=_layer, metavar="M", default=2.0,
                   help="vertical layer height [m], 0.1..100")
    b.add_argument("--clearance", type=_clearance, metavar="M", default=5.0,
                   help="clearance kept around buildings [m]")
    b.add_argument("--crs", default=None, help="override the source CRS (e.g. EPSG:7415)")
    b.add_argument("--height-field", metavar="NAME", default=None,
                   help="attribute that holds the building height above ground, "
                        "replacing the built-in names (height, HAUTEUR, measuredHeight, ...)")
    b.add_argument("--ground-field", metavar="NAME", default=None,
                   help="attribute that holds the ground altitude (e.g. Z_MIN_SOL)")
    b.add_argument("--unknown-height", type=_unknown_height, metavar="M", default=None,
                   help="assume M metres above ground for buildings whose data gives no "
                        "height (by default their columns are blocked up to the ceiling)")
    b.add_argument("--strict", action="store_true",
                   help="fail instead of repairing a face, enclosing an object by its hull "
                        "or assuming a height")
    b.add_argument("--out", type=_out_file, metavar="FILE", default=None,
                   help="save the twin to this file (.npz)")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.add_argument("--png", type=_out_file, metavar="FILE", default=None,
                   help="render the height and clearance fields")
    b.add_argument("--geojson", type=_out_file, metavar="FILE", default=None,
                   help="write the buildings (WGS84 footprints with heights) as GeoJSON")
    b.add_argument("--quiet", action="store_true", help="no progress on stderr")
    b.set_defaults(func=_cmd_twin_build)
    i = tsub.add_parser("info", help="summarise a saved twin")
    i.add_argument("file", type=_in_file, help="a twin saved by 'skytwin twin build --out'")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=_cmd_twin_info)

    r = sub.add_parser("route", help="plan one checked 4D route",
                       description="Plan one route, checked against every building "
                       "(exact geometry) and the given no-fly volumes.")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--city", type=_in_file, metavar="PATH", default=DEFAULT_CITY,
                     help="city model to build the twin from")
    src.add_argument("--twin", type=_in_file, metavar="FILE",
                     help="a twin saved by 'skytwin twin build --out' (instead of --city)")
    r.add_argument("--from", dest="from_", required=True, metavar="LON,LAT[,ALT]",
                   help="start (WGS84 degrees; optional pad altitude [m AMSL])")
    r.add_argument("--to", required=True, metavar="LON,LAT[,ALT]", help="goal")
    r.add_argument("--depart", default=None,
                   help="departure time, Unix seconds or ISO 8601 (default: now)")
    r.add_argument("--zones", type=_in_file, metavar="FILE", default=None,
                   help="ED-269 JSON file of no-fly volumes")
    r.add_argument("--json", action="store_true",
                   help="print the route as JSON (docs/route.schema.json)")
    r.add_argument("--geojson", type=_out_file, metavar="FILE", default=None,
                   help="write the route (and nearby buildings) as GeoJSON")
    r.add_argument("--czml", type=_out_file, metavar="FILE", default=None,
                   help="write the 4D trajectory as CZML (Cesium)")
    r.add_argument("--png", type=_out_file, metavar="FILE", default=None,
                   help="render map view + altitude profile")
    r.add_argument("--risk-weight", type=_risk_weight, default=0.0, metavar="W",
                   help="trade length for ground risk: a move costs length x (1 + W x "
                   "normalised risk); 0 = shortest route (the exposure is reported "
                   "either way)")
    r.add_argument("--max-band", type=_band, default=None, metavar="B",
                   help="never overfly a cell of SORA population band above B (1: <5, "
                   "2: <50, 3: <500, 4: <5,000, 5: <50,000, 6: more people per km2)")
    r.add_argument("--population", type=_population_file, metavar="FILE", default=None,
                   help="people on the ground: .csv points (lon, lat, people) or .asc "
                   "ESRI ASCII grid (people per cell); default: estimated from the city "
                   "model's buildings")
    r.add_argument("--derive-zones", action="store_true",
                   help="derive zones from the city model's semantics (hospitals, "
                   "prisons, power plants...) and avoid the restricted, altitude-limited "
                   "and unauthorised ones")
    r.add_argument("--zone-rules", type=_in_file, metavar="FILE", default=None,
                   help="derived-zone rules file (implies --derive-zones; default "
                   "fixtures/rules/derived_zones.json)")
    r.add_argument("--authorisation", action="append", default=[], metavar="ID",
                   help="a derived zone id or rule id the operator is authorised for "
                   "(repeat)")
    r.set_defaults(func=_cmd_route)

    zn = sub.add_parser("zones", help="zones from the city model (derive)",
                        description="Zones derived from what the city model says about "
                        "its objects, by rules kept as data.")
    zs = zn.add_subparsers(dest="zones_command", required=True, metavar="COMMAND")
    zd = zs.add_parser("derive", help="list the zones derived from a city model",
                       description="Read a city model and print the zones its "
                       "semantics call for (OSM tags, CityGML/PLATEAU usage and function "
                       "codes, CityJSON attributes), each with its rule, source object "
                       "and category, and a count per category.")
    zd.add_argument("path", type=_in_file, metavar="PATH", help="city model file")
    zd.add_argument("--rules", type=_in_file, metavar="FILE", default=None,
                    help="rules file (default: fixtures/rules/derived_zones.json)")
    zd.add_argument("--ed269", type=_out_file, metavar="FILE", default=None,
                    help="also write the zones as ED-269 JSON")
    zd.add_argument("--json", action="store_true", help="print one JSON object")
    zd.set_defaults(func=_cmd_zones_derive)

    fl = sub.add_parser("fleet", help="plan a delivery fleet, detect and resolve conflicts",
                        description="Plan delivery flights from hubs over a city, detect "
                        "their conflicts and resolve them (CP-SAT or first-come-first-"
                        "served), checked by an independent verifier.")
    fsrc = fl.add_mutually_exclusive_group()
    fsrc.add_argument("--city", type=_in_file, metavar="PATH", default=DEFAULT_CITY,
                      help="city model to build the twin from")
    fsrc.add_argument("--twin", type=_in_file, metavar="FILE",
                      help="a twin saved by 'skytwin twin build --out' (instead of --city)")
    fl.add_argument("--flights", type=_count, default=200, help="flights to plan")
    fl.add_argument("--duration", type=_positive, default=1800.0,
                    help="departures spread over this span [s]")
    fl.add_argument("--depart", default=None,
                    help="first departure, Unix seconds or ISO 8601 (default: now)")
    fl.add_argument("--seed", type=int, default=0, help="seed of the traffic scenario")
    fl.add_argument("--method", choices=("cpsat", "fcfs"), default="cpsat",
                    help="deconfliction: CP-SAT optimisation or first-come-first-served")
    fl.add_argument("--budget", type=_positive, default=20.0, help="CP-SAT time budget [s]")
    fl.add_argument("--geojson", type=_out_file, metavar="FILE", default=None,
                    help="flights and conflicts as GeoJSON")
    fl.add_argument("--czml", type=_out_file, metavar="FILE", default=None,
                    help="resolved flights as CZML (Cesium)")
    fl.add_argument("--png", type=_out_file, metavar="FILE", default=None,
                    help="render the fleet and its conflicts")
    fl.add_argument("--ray", type=_ray_mode, metavar="MODE", default=None,
                    help="plan and deconflict as a fleet-day in departure-time windows "
                    "(skytwin.planner.fleetday), fanned out over Ray: 'local' (start Ray "
                    "on this machine), 'auto' (join this machine's cluster), HOST:PORT or "
                    "ray://HOST:PORT, or 'off' (the same pipeline in this process; same "
                    "seed, same result). Needs pip install 'skytwin[ray]'. Default: the "
                    "one-piece pipeline above, without Ray")
    fl.add_argument("--ray-cpus", type=_count, default=None, metavar="N",
                    help="CPUs of a local Ray instance (default: all)")
    fl.add_argument("--window", type=_positive, default=1800.0, metavar="S",
                    help="with --ray: shortest deconfliction window [s] (raised to the "
                    "flights' reach, see planner/fleetday.py)")
    fl.add_argument("--json", action="store_true", help="print the summary as JSON")
    fl.set_defaults(func=_cmd_fleet)

    d = sub.add_parser("demo", help="build the bundled city's twin and plan a route",
                       description="Build the bundled city's twin, plan one checked route "
                       "across it and write it as GeoJSON, CZML and PNG.")
    d.add_argument("--out", type=_out_dir, metavar="DIR", default="skytwin-demo",
                   help="output folder (created; its parent must exist)")
    d.set_defaults(func=_cmd_demo)
    _add_server_parsers(sub)
    _add_loadtest_parser(sub)
    _add_simulate_parser(sub)
    return p


def _main(argv) -> int:
    global _JSON_ERRORS
    argv = list(sys.argv[1:] if argv is None else argv)
    _JSON_ERRORS = "--json" in argv or (bool(argv) and argv[0] == "client")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:           # --help (0) or a one-line usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return args.func(args)


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` was caused by Ctrl-C (a KeyboardInterrupt in its chain)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one ``skytwin`` command; returns the exit code.

    Called without ``argv`` (as the ``skytwin`` program), Ctrl-C ends the process at
    once with exit code 130 (``os._exit`` after flushing the output): planning threads
    still running are not waited for, and the interpreter cannot turn the handled
    interrupt into a death by SIGINT at exit.
    """
    try:
        rc = _main(argv)
        sys.stdout.flush()      # a closed pipe shows here, not at interpreter exit
    except KeyboardInterrupt:           # Ctrl-C: quiet, the conventional 128 + SIGINT
        rc = EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:            # a bug: one line, the traceback on request
        if not _interrupted(exc):       # Ctrl-C inside a numba kernel surfaces wrapped
            if os.environ.get("SKYTWIN_DEBUG"):  # (SystemError "... exception set")
                raise
            _emit_error(f"internal error ({type(exc).__name__}: {exc}); run with "
                        "SKYTWIN_DEBUG=1 for the traceback and please report it",
                        "INTERNAL", _JSON_ERRORS)
            return 1
        rc = EXIT_INTERRUPTED
    if rc == EXIT_INTERRUPTED and argv is None:
        if _stderr_is_tty():
            sys.stderr.write("\n")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)
    return rc


if __name__ == "__main__":
    sys.exit(main())
