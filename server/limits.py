"""Limits on everything a caller controls: one data file, one frozen dataclass, checks.

Design
------
The numbers live in ``fixtures/limits/default_limits.json`` (data, like the airspace
rules in ``fixtures/rules/default_rules.json``), each with the reason for its value;
:func:`load_limits` reads and validates that file into :class:`Limits`. Nothing else
in the server holds a limit: the edge checks (:mod:`server.convert`, the servicers),
the service core, the thread pools, the planners' workspace policy and GetTwinInfo
(so that clients can check before calling) all read the same :class:`Limits`.

Two kinds of refusal, both before any work starts:

* a *value* out of range (a speed, a departure 30 years ahead, a 1 MB id, a radius of
  1e300, a band whose lower limit is above its upper one, JSON nested too deep) is
  :class:`LimitError`, a ``ValueError`` -> INVALID_ARGUMENT;
* a request too large as a whole (a batch, a polygon, a page, a query answer) is
  ``RequestTooLargeError`` -> RESOURCE_EXHAUSTED, as before.

Messages name the field and the limit and repeat at most ``echo_chars`` characters of
what the caller sent (:func:`echo`), so that a 1 MB id cannot make an error message
exceed gRPC's metadata limit.

Examples
--------
>>> lim = load_limits()
>>> lim.max_id_chars, lim.max_flight_duration_s
(128, 7200.0)
>>> check_id(lim, "request_id", "r-1")
'r-1'
>>> check_id(lim, "request_id", "x" * 200)
Traceback (most recent call last):
...
skytwin.server.limits.LimitError: request_id: 200 characters, over the limit of 128 (starts 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'...)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from skytwin.airspace.errors import AirspaceError

__all__ = [
    "DEFAULT_LIMITS_PATH",
    "ID_PATTERN",
    "LimitError",
    "Limits",
    "check_id",
    "check_range",
    "check_text",
    "echo",
    "load_limits",
]

DEFAULT_LIMITS_PATH = (Path(__file__).resolve().parents[1] / "fixtures" / "limits"
                       / "default_limits.json")
ID_PATTERN = re.compile(r"[A-Za-z0-9._:@/+=~-]+")


class LimitError(AirspaceError, ValueError):
    """A caller-controlled value outside its documented limit (INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class Limits:
    """Every limit (see ``fixtures/limits/default_limits.json`` for the reasons)."""

    max_flight_duration_s: float
    min_cruise_speed_mps: float
    max_cruise_speed_mps: float
    min_vertical_speed_mps: float
    max_vertical_speed_mps: float
    max_departure_ahead_s: float
    past_departure_s: float
    max_delay_s: float
    max_priority: float
    max_id_chars: int
    max_text_chars: int
    max_grid_code_chars: int
    echo_chars: int
    max_polygon_vertices: int
    max_radius_m: float
    max_abs_altitude_m: float
    max_zones: int
    max_ed269_bytes: int
    max_json_depth: int
    max_batch: int
    max_page_size: int
    max_query_clearance_m: float
    max_query_cells: int
    max_blocked_codes: int
    max_query_zones: int
    max_solve_s: float
    deadline_fast_s: float
    deadline_plan_s: float
    deadline_batch_s: float
    max_waiting_plan: int
    max_queue_wait_s: float
    max_waiting_fast: int
    max_waiting_query: int
    max_watchers: int
    keep_workspace_voxels: int
    large_search_slots: int
    rss_cap_mb: float
    plan_hold_s: float
    max_held_plans: int
    max_held_plans_per_operator: int

    def as_dict(self) -> dict:
        """``{name: value}`` of every limit."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Limits:
        """A copy with some limits changed (tests, deployments)."""
        return dataclasses.replace(self, **changes)


def _parse(doc, where: str) -> Limits:
    if not isinstance(doc, dict) or not isinstance(doc.get("limits"), dict):
        raise LimitError(f"{where}: expected an object with a 'limits' object")
    raw = doc["limits"]
    vals = {}
    for f in dataclasses.fields(Limits):
        if f.name not in raw:
            raise LimitError(f"{where}: limits.{f.name} is missing")
        v = raw[f.name]
        v = v.get("value") if isinstance(v, dict) else v
        kind = int if f.type == "int" else float
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise LimitError(f"{where}: limits.{f.name} must be a number, got {v!r}")
        if kind is int and v != int(v):
            raise LimitError(f"{where}: limits.{f.name} must be an integer, got {v!r}")
        if not (math.isfinite(v) and v >= 0):
            raise LimitError(f"{where}: limits.{f.name} must be finite and >= 0, got {v!r}")
        vals[f.name] = kind(v)
    unknown = sorted(set(raw) - set(vals))
    if unknown:
        raise LimitError(f"{where}: unknown limit(s) {', '.join(unknown)}")
    lim = Limits(**vals)
    for lo, hi in (("min_cruise_speed_mps", "max_cruise_speed_mps"),
                   ("min_vertical_speed_mps", "max_vertical_speed_mps")):
        if not getattr(lim, lo) < getattr(lim, hi):
            raise LimitError(f"{where}: limits.{lo} must be below limits.{hi}")
    return lim


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> Limits:
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LimitError(f"{p}: limits file not found") from None
    except json.JSONDecodeError as exc:
        raise LimitError(f"{p}: not valid JSON: {exc}") from None
    return _parse(doc, str(p))


def load_limits(path: str | Path | None = None) -> Limits:
    """Read and validate a limits file (default: the bundled ``default_limits.json``)."""
    return _load_cached(str(Path(path) if path is not None else DEFAULT_LIMITS_PATH))


# ----------------------------------------------------------------------------- checks
def echo(value, n: int = 64) -> str:
    """``repr`` of at most ``n`` characters of caller input (``...`` when cut).

    >>> echo("abc"), echo("x" * 100, 4)
    ("'abc'", "'xxxx'...")
    """
    s = value if isinstance(value, str) else str(value)
    return repr(s[:n]) + ("..." if len(s) > n else "")


def check_text(lim: Limits, field: str, value: str, *, max_chars: int | None = None) -> str:
    """Free text: at most ``max_text_chars`` characters, no control characters."""
    mx = lim.max_text_chars if max_chars is None else max_chars
    if len(value) > mx:
        raise LimitError(f"{field}: {len(value)} characters, over the limit of {mx} "
                         f"(starts {echo(value, lim.echo_chars)})")
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise LimitError(f"{field}: control characters are not allowed "
                         f"(got {echo(value, lim.echo_chars)})")
    return value


def check_id(lim: Limits, field: str, value: str, *, required: bool = True) -> str:
    """An id: 1..``max_id_chars`` characters from ``A-Z a-z 0-9 . _ - : @ / + = ~``."""
    if not value:
        if required:
            raise LimitError(f"{field} is required")
        return value
    if len(value) > lim.max_id_chars:
        raise LimitError(f"{field}: {len(value)} characters, over the limit of "
                         f"{lim.max_id_chars} (starts {echo(value, lim.echo_chars)})")
    if not ID_PATTERN.fullmatch(value):
        raise LimitError(f"{field}: only letters, digits and . _ - : @ / + = ~ are "
                         f"allowed, got {echo(value, lim.echo_chars)}")
    return value


def check_range(field: str, value: float, lo: float, hi: float, unit: str = "") -> float:
    """``lo <= value <= hi`` and finite, else :class:`LimitError` naming the field."""
    v = float(value)
    if not (math.isfinite(v) and lo <= v <= hi):
        u = f" {unit}" if unit else ""
        raise LimitError(f"{field} must be within {lo:g}..{hi:g}{u}, got {v:.6g}{u}")
    return v
