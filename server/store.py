"""Durable state of the service: accepted flights, no-fly zones, the twin reference.

Design
------
One SQLite file, plain dataclasses in and out (no gRPC, no protobuf here). The
service acknowledges a booking to the operator only after :meth:`Store.add_flight`
returned, and a returned call means the transaction is committed *and on disk*: a
server killed with SIGKILL (or a machine losing power) at any later moment restarts
with that flight intact.

Why WAL + ``synchronous=FULL``
    In WAL mode a commit appends the changed pages to the ``-wal`` file; readers keep
    reading the last committed snapshot while one writer appends, so the Watch stream
    and list calls never wait for a booking. With ``synchronous=FULL`` SQLite fsyncs
    the WAL at every commit, so "commit returned" = "on stable storage": the
    acknowledgement is durable against power loss, not only against a killed process
    (``NORMAL`` would survive SIGKILL but may lose the last commits on power loss). A
    transaction cut off half-way has no commit frame in the WAL and is ignored at the
    next open, so nothing unacknowledged is ever half-written. The price is one fsync
    per commit: batch bookings (:meth:`Store.add_flights`) share one transaction and
    one fsync.

Schema (version :data:`SCHEMA_VERSION` in ``PRAGMA user_version``; the file is marked
with ``PRAGMA application_id`` = :data:`APPLICATION_ID`)::

    flights(seq INTEGER PRIMARY KEY,       -- acceptance order: list order, paging
            flight_id TEXT UNIQUE, operator_id, request_id,
            UNIQUE (operator_id, request_id),
            status ('accepted'|'cancelled'), priority, created_s, cancelled_s,
            t_start_s, t_end_s,            -- trajectory span, indexed (time filters)
            n_points,                      -- waypoint count n >= 2
            xyz_m, t_s, lonlat_deg,        -- little-endian float64 BLOBs of
            alt_amsl_m, alt_agl_m,         -- 24n, 8n, 16n, 8n, 8n bytes (CHECKed)
            crc32,                         -- zlib.crc32 of the five BLOBs
            meta, traj_id, traj_priority,  -- JSON / the Trajectory's own fields
            traj_max_delay_s, traj_meta,
            request_digest,                -- v2: SHA-256 hex of the request (or NULL)
            cancel_reason)                 -- v2: why it was cancelled (or NULL)
    zones(zone_id TEXT PRIMARY KEY,
          body TEXT,                       -- JSON of every Zone field
          actor, updated_s)
    twin_ref(one INTEGER PRIMARY KEY CHECK (one = 1), body TEXT)   -- one JSON row
    events(seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a Watch cursor
           kind, id, time_s, actor,                -- survives restarts
           reason)                                 -- v2: e.g. a cancel's reason
    derived_overrides(zone_id TEXT PRIMARY KEY,    -- v4 (issue 13): a regulator's
          body TEXT, actor, updated_s)             -- change to a derived zone (JSON;
                                                   -- server.ground), with a zone_put event

Migration. Version 1 files (before request digests and cancel reasons) are upgraded
in place when opened, in one transaction: ``ALTER TABLE ... ADD COLUMN`` for the three
nullable v2 columns, then ``user_version = 2``. Old rows read back with ``None``
there: a flight without a digest replays any retry of its request id, as v1 did.

Every write that changes flights or zones appends its event row in the same
transaction, so the change log and the state never disagree. Arrays are stored as
their float64 bytes, so a loaded record equals the stored one bit for bit
(``np.array_equal``, ``-0.0`` and all); JSON floats are written with ``repr`` and
read back exactly. Each row is decoded with its lengths and CRC checked, so a damaged
row raises :class:`StoreCorruptError` instead of yielding a wrong trajectory.

Thread model and group commit
    Reads use one ``sqlite3`` connection per thread (``threading.local``), opened
    lazily the first time a thread reads: gRPC's thread pool reads concurrently (WAL
    readers block neither each other nor the writer). Every write goes through one
    writer thread with its own connection (a lock around one connection would
    serialise readers behind every fsync). The writer takes all writes queued so far
    (at most :data:`MAX_GROUP`), runs each in its own ``SAVEPOINT`` inside one ``BEGIN
    IMMEDIATE`` transaction, commits once, and only then releases each caller with its
    result or its own exception (a failing write rolls back alone; if the
    transaction itself fails, every write of the group fails and none is
    acknowledged). Durability per acknowledgement is unchanged, but N threads
    booking at once share one fsync instead of queueing for N: the classic group
    commit. A lone caller pays one thread hand-off (tens of microseconds) on top of
    the fsync. Records are immutable, so sharing returned records between threads is
    safe. :meth:`Store.close` finishes the queued writes, stops the writer and closes
    every connection; calls after it raise :class:`StoreClosedError`.

Throughput (measured here, ``python tests/store_crash_worker.py --bench DIR``)
    Bounded by the fsync per commit, whose latency on this shared disk varied from
    about 0.4 ms to 4 ms between runs: single ``add_flight`` calls from one thread ran
    at 250-2,400/s (``synchronous=NORMAL`` in the same runs: 2,000-4,800/s, the price
    of durability against power loss), from 8 threads at 1,100-4,700/s and from 32
    threads at 3,500-6,400/s (group commit: about 4 and 15 writes per commit), and
    ``add_flights`` batches of 100 at 5,000-10,400 flights/s. A caller that holds
    its own lock across "place, then ``add_flight``" serialises on the fsync and gets
    the one-thread rate; reserve under the lock and persist outside it to share
    commits. Reading back (``accepted_flights``) runs at 8,000-23,000 flights/s.

Restart
    At start-up the service calls :meth:`Store.accepted_flights` with
    ``t_from_s=now``: every accepted flight whose trajectory has not yet ended, in
    acceptance order. It feeds their trajectories to the planner's reservation index
    (the structure new bookings are deconflicted against, with these flights fixed)
    before it starts serving, and :meth:`Store.list_zones` to the zone layer. After a
    kill the reservations are therefore exactly the acknowledged bookings minus the
    finished and cancelled ones. :meth:`Store.last_event_seq` gives the Watch stream
    its starting cursor.
"""

from __future__ import annotations

import json
import math
import queue
import sqlite3
import threading
import uuid
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from skytwin.airspace.errors import AirspaceError
from skytwin.airspace.zones import Altitude, Authority, Circle, Zone
from skytwin.planner.trajectory import Trajectory

__all__ = [
    "APPLICATION_ID",
    "EVENT_KINDS",
    "FLIGHT_STATUSES",
    "MAX_GROUP",
    "SCHEMA_VERSION",
    "FlightRecord",
    "InvalidRecordError",
    "Store",
    "StoreClosedError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreError",
    "StoreNotFoundError",
    "StoreVersionError",
    "new_flight_id",
    "zone_from_json",
    "zone_to_json",
]

SCHEMA_VERSION = 4
_GROUND_TABLES = (   # v4 (issue 13): a regulator's overrides of derived zones
    """CREATE TABLE IF NOT EXISTS derived_overrides (
    zone_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    actor TEXT NOT NULL,
    updated_s REAL NOT NULL
)""",
)
_LIVE_TABLES = (
    """CREATE TABLE IF NOT EXISTS lifecycle (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    flight_id TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    time_s REAL NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS lifecycle_flight ON lifecycle (flight_id, seq)",
    """CREATE TABLE IF NOT EXISTS track_points (
    flight_id TEXT NOT NULL,
    t_s REAL NOT NULL,
    lon_deg REAL NOT NULL,
    lat_deg REAL NOT NULL,
    alt_amsl_m REAL NOT NULL,
    PRIMARY KEY (flight_id, t_s)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS track_points_time ON track_points (t_s)",
)
_MIGRATIONS = {  # from version -> statements that bring it to version + 1
    1: ("ALTER TABLE flights ADD COLUMN request_digest TEXT",
        "ALTER TABLE flights ADD COLUMN cancel_reason TEXT",
        "ALTER TABLE events ADD COLUMN reason TEXT"),
    # v3 (issue 11): lifecycle and track tables; the events table is rebuilt (SQLite's
    # documented way to change a CHECK) to admit 'flight_state' rows, keeping every
    # row, its sequence number and the AUTOINCREMENT counter
    2: (*_LIVE_TABLES,
        "DROP TABLE IF EXISTS events_v3",
        """CREATE TABLE events_v3 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN
        ('flight_accepted', 'flight_cancelled', 'zone_put', 'zone_deleted',
         'flight_state')),
    id TEXT NOT NULL,
    time_s REAL NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT
)""",
        "INSERT INTO events_v3 (seq, kind, id, time_s, actor, reason) "
        "SELECT seq, kind, id, time_s, actor, reason FROM events",
        "UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM "
        "sqlite_sequence WHERE name = 'events'), 0)) WHERE name = 'events_v3'",
        "DROP TABLE events",
        "ALTER TABLE events_v3 RENAME TO events"),
    3: _GROUND_TABLES,
}
APPLICATION_ID = 0x536B7954  # "SkyT": marks the file as a SkyTwin store
FLIGHT_STATUSES = ("accepted", "cancelled")
EVENT_KINDS = ("flight_accepted", "flight_cancelled", "zone_put", "zone_deleted",
               "flight_state")
BUSY_TIMEOUT_MS = 10_000
MAX_GROUP = 512  # most writes committed in one transaction
_F8 = np.dtype("<f8")


# ------------------------------------------------------------------------------ errors
class StoreError(AirspaceError):
    """Base class of every error raised on purpose by :mod:`server.store`."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached, read or written just now (a disk or database
    error, not the request's fault): retrying is safe (over gRPC: UNAVAILABLE)."""


class StoreWriteError(StoreUnavailableError):
    """A write transaction failed: nothing of it was acknowledged; retrying the same
    request is safe."""


class CommitUncertainError(StoreWriteError):
    """The transaction's COMMIT itself failed: its rows may or may not be on disk (a
    crash between the write and the acknowledgement looks the same). The service keeps
    such a booking's space reserved until a restart reloads the store, and a retry of
    the same request id finds the rows if they are there."""


def write_failure(path, exc: BaseException, committing: bool) -> StoreWriteError:
    """The error for a write transaction of store ``path`` that failed with ``exc``:
    :class:`CommitUncertainError` when COMMIT itself failed (``committing``), else
    :class:`StoreWriteError` (nothing was written). SQLite's and PostgreSQL's."""
    if committing:
        return CommitUncertainError(
            f"store {path}: the commit failed ({exc}); the write may or may not be "
            "stored: retry (a booking: with the same request_id)")
    return StoreWriteError(f"store {path}: write transaction failed: {exc}; nothing "
                           "was written: retry (a booking: with the same request_id)")


class StoreNotFoundError(StoreError, KeyError):
    """No flight or zone with that id (a ``KeyError`` too)."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreConflictError(StoreError, ValueError):
    """A write violates a uniqueness rule (e.g. a flight id already used by another
    request); the whole transaction was rolled back."""


class InvalidRecordError(StoreError, ValueError):
    """A record cannot be stored as given (wrong shapes, non-finite numbers, a status
    other than the allowed ones, meta that is not JSON)."""


class StoreVersionError(StoreError, RuntimeError):
    """The file is not a SkyTwin store, or was written by a newer schema version."""


class StoreCorruptError(StoreError, RuntimeError):
    """A stored row fails its length or checksum check."""


class StoreClosedError(StoreUnavailableError, RuntimeError):
    """The store was closed."""


# ----------------------------------------------------------------------------- records
def new_flight_id() -> str:
    """A fresh server-side flight id, ``"F-"`` + 12 hex digits of a UUID4.

    Examples
    --------
    >>> fid = new_flight_id()
    >>> fid.startswith("F-") and len(fid) == 14
    True
    """
    return "F-" + uuid.uuid4().hex[:12]


def _f64(a, name, fid) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(
            f"flight {fid}: {name} must be numeric: {exc}"
        ) from exc
    return arr


@dataclass(frozen=True)
class FlightRecord:
    """One booked flight as the store keeps it.

    Attributes
    ----------
    flight_id : str
        Server-assigned, unique (see :func:`new_flight_id`).
    operator_id : str
    request_id : str
        The client's idempotency key, unique per operator.
    status : {"accepted", "cancelled"}
    trajectory : planner.trajectory.Trajectory
        ``xyz_m`` (n, 3) float64 local frame [m, z AMSL], ``t_s`` (n,) float64 [Unix s].
    lonlat_deg : (n, 2) float64 [deg]
        WGS84 longitude, latitude of each waypoint.
    alt_amsl_m, alt_agl_m : (n,) float64 [m]
        Altitude of each waypoint above mean sea level and above ground.
    priority : float
    created_s : float
        Acceptance time [Unix s].
    cancelled_s : float or None
        Cancellation time [Unix s], ``None`` while accepted.
    meta : dict
        JSON-serialisable extras (start/goal, delay_s, layer...). Stored through JSON:
        tuples come back as lists, numpy scalars as Python numbers.
    request_digest : str or None
        Digest of the request that booked it (binds the request id to the request).
    cancel_reason : str or None
        Why it was cancelled (a regulator cancelling another operator's flight must say).

    Notes
    -----
    Equality compares every field, arrays with ``np.array_equal`` (the trajectory by its
    id, arrays, priority and max delay); records are not hashable.
    """

    flight_id: str
    operator_id: str
    request_id: str
    status: str
    trajectory: Trajectory
    lonlat_deg: np.ndarray
    alt_amsl_m: np.ndarray
    alt_agl_m: np.ndarray
    priority: float
    created_s: float
    cancelled_s: float | None = None
    meta: dict = field(default_factory=dict)
    request_digest: str | None = None
    cancel_reason: str | None = None

    def __post_init__(self):
        fid = self.flight_id
        for name in ("flight_id", "operator_id", "request_id"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise InvalidRecordError(
                    f"flight {fid!r}: {name} must be a non-empty string, got {v!r}"
                )
        if self.status not in FLIGHT_STATUSES:
            raise InvalidRecordError(
                f"flight {fid}: status must be one of {FLIGHT_STATUSES}, "
                f"got {self.status!r}"
            )
        if not isinstance(self.trajectory, Trajectory):
            raise InvalidRecordError(
                f"flight {fid}: trajectory must be a planner.trajectory.Trajectory, "
                f"got {type(self.trajectory).__name__}"
            )
        n = self.trajectory.t_s.shape[0]
        lonlat = _f64(self.lonlat_deg, "lonlat_deg", fid)
        amsl = _f64(self.alt_amsl_m, "alt_amsl_m", fid)
        agl = _f64(self.alt_agl_m, "alt_agl_m", fid)
        for name, arr, shape in (
            ("lonlat_deg", lonlat, (n, 2)),
            ("alt_amsl_m", amsl, (n,)),
            ("alt_agl_m", agl, (n,)),
        ):
            if arr.shape != shape:
                raise InvalidRecordError(
                    f"flight {fid}: {name} must have shape {shape} (one per waypoint), "
                    f"got {arr.shape}"
                )
            if not np.all(np.isfinite(arr)):
                raise InvalidRecordError(
                    f"flight {fid}: {name} holds a non-finite value"
                )
        object.__setattr__(self, "lonlat_deg", lonlat)
        object.__setattr__(self, "alt_amsl_m", amsl)
        object.__setattr__(self, "alt_agl_m", agl)
        for name in ("priority", "created_s", "cancelled_s"):
            v = getattr(self, name)
            if v is None and name == "cancelled_s":
                continue
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise InvalidRecordError(
                    f"flight {fid}: {name} must be a number, got {v!r}"
                ) from None
            if not math.isfinite(fv):
                raise InvalidRecordError(
                    f"flight {fid}: {name} must be finite, got {v!r}"
                )
            object.__setattr__(self, name, fv)
        if (self.status == "cancelled") != (self.cancelled_s is not None):
            raise InvalidRecordError(
                f"flight {fid}: cancelled_s must be set exactly when status is "
                f"'cancelled' (status {self.status!r}, "
                f"cancelled_s {self.cancelled_s!r})"
            )
        if not isinstance(self.meta, dict):
            raise InvalidRecordError(
                f"flight {fid}: meta must be a dict, got {type(self.meta).__name__}"
            )

    def __eq__(self, other):
        if not isinstance(other, FlightRecord):
            return NotImplemented
        a, b = self.trajectory, other.trajectory
        return (
            self.flight_id == other.flight_id
            and self.operator_id == other.operator_id
            and self.request_id == other.request_id
            and self.status == other.status
            and a.flight_id == b.flight_id
            and a.priority == b.priority
            and a.max_delay_s == b.max_delay_s
            and np.array_equal(a.xyz_m, b.xyz_m)
            and np.array_equal(a.t_s, b.t_s)
            and np.array_equal(self.lonlat_deg, other.lonlat_deg)
            and np.array_equal(self.alt_amsl_m, other.alt_amsl_m)
            and np.array_equal(self.alt_agl_m, other.alt_agl_m)
            and self.priority == other.priority
            and self.created_s == other.created_s
            and self.cancelled_s == other.cancelled_s
            and self.meta == other.meta
            and self.request_digest == other.request_digest
            and self.cancel_reason == other.cancel_reason
        )

    __hash__ = None  # mutable-looking arrays and a dict inside: not hashable


# ------------------------------------------------------------------------------- JSON
def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _dumps(obj, what) -> str:
    try:
        return json.dumps(
            obj,
            default=_json_default,
            allow_nan=False,
            separators=(",", ":"),
            sort_keys=True,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRecordError(f"{what} must be JSON-serialisable: {exc}") from exc


def zone_to_json(zone: Zone) -> str:
    """Encode every field of a :class:`~airspace.zones.Zone` as JSON (exact floats).

    Examples
    --------
    >>> z = Zone(id="Z-1", circle=Circle(24.94, 60.17, 200.0),
    ...          lower=Altitude(0, "AGL"), upper=Altitude(120, "AGL"),
    ...          window=(1.5, None))
    >>> zone_from_json(zone_to_json(z)) == z
    True
    """
    if not isinstance(zone, Zone):
        raise InvalidRecordError(f"expected an airspace.zones.Zone, got {zone!r}")
    body = {
        "id": zone.id,
        "lower": [zone.lower.value_m, zone.lower.reference],
        "upper": [zone.upper.value_m, zone.upper.reference],
        "polygon": None if zone.polygon is None else [list(p) for p in zone.polygon],
        "circle": None
        if zone.circle is None
        else [zone.circle.lon_deg, zone.circle.lat_deg, zone.circle.radius_m],
        "window": None if zone.window is None else list(zone.window),
        "reason": zone.reason,
        "authority": [zone.authority.name, zone.authority.contact],
        "name": zone.name,
    }
    return _dumps(body, f"zone {zone.id}")


def zone_from_json(text: str) -> Zone:
    """Inverse of :func:`zone_to_json`."""
    d = json.loads(text)
    return Zone(
        id=d["id"],
        lower=Altitude(*d["lower"]),
        upper=Altitude(*d["upper"]),
        polygon=None if d["polygon"] is None else tuple(tuple(p) for p in d["polygon"]),
        circle=None if d["circle"] is None else Circle(*d["circle"]),
        window=None if d["window"] is None else tuple(d["window"]),
        reason=d["reason"],
        authority=Authority(*d["authority"]),
        name=d["name"],
    )


# ------------------------------------------------------------------------------ schema
_SCHEMA = """
CREATE TABLE flights (
    seq INTEGER PRIMARY KEY,
    flight_id TEXT NOT NULL UNIQUE,
    operator_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'cancelled')),
    priority REAL NOT NULL,
    created_s REAL NOT NULL,
    cancelled_s REAL,
    t_start_s REAL NOT NULL,
    t_end_s REAL NOT NULL CHECK (t_end_s >= t_start_s),
    n_points INTEGER NOT NULL CHECK (n_points >= 2),
    xyz_m BLOB NOT NULL CHECK (length(xyz_m) = 24 * n_points),
    t_s BLOB NOT NULL CHECK (length(t_s) = 8 * n_points),
    lonlat_deg BLOB NOT NULL CHECK (length(lonlat_deg) = 16 * n_points),
    alt_amsl_m BLOB NOT NULL CHECK (length(alt_amsl_m) = 8 * n_points),
    alt_agl_m BLOB NOT NULL CHECK (length(alt_agl_m) = 8 * n_points),
    crc32 INTEGER NOT NULL,
    meta TEXT NOT NULL,
    traj_id TEXT NOT NULL,
    traj_priority REAL NOT NULL,
    traj_max_delay_s REAL NOT NULL,
    traj_meta TEXT NOT NULL,
    request_digest TEXT,
    cancel_reason TEXT,
    UNIQUE (operator_id, request_id),
    CHECK ((status = 'cancelled') = (cancelled_s IS NOT NULL))
);
CREATE INDEX flights_operator ON flights (operator_id, seq);
CREATE INDEX flights_time ON flights (t_end_s, t_start_s);
CREATE INDEX flights_status ON flights (status, t_end_s);
CREATE TABLE zones (
    zone_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    actor TEXT NOT NULL,
    updated_s REAL NOT NULL
);
CREATE TABLE twin_ref (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    body TEXT NOT NULL
);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN
        ('flight_accepted', 'flight_cancelled', 'zone_put', 'zone_deleted',
         'flight_state')),
    id TEXT NOT NULL,
    time_s REAL NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT
);
"""

_FLIGHT_COLS = (
    "flight_id, operator_id, request_id, status, priority, created_s, cancelled_s, "
    "t_start_s, t_end_s, n_points, xyz_m, t_s, lonlat_deg, alt_amsl_m, alt_agl_m, "
    "crc32, meta, traj_id, traj_priority, traj_max_delay_s, traj_meta, "
    "request_digest, cancel_reason"
)


def _blobs(rec: FlightRecord) -> tuple[bytes, ...]:
    tr = rec.trajectory
    return tuple(
        np.ascontiguousarray(a, dtype=_F8).tobytes()
        for a in (tr.xyz_m, tr.t_s, rec.lonlat_deg, rec.alt_amsl_m, rec.alt_agl_m)
    )


def _crc(blobs) -> int:
    c = 0
    for b in blobs:
        c = zlib.crc32(b, c)
    return c


def _normalised(rec: FlightRecord) -> tuple[FlightRecord, tuple]:
    """The record as it will read back (meta through JSON) and its row values."""
    fid = rec.flight_id
    meta_s = _dumps(rec.meta, f"flight {fid}: meta")
    tmeta_s = _dumps(rec.trajectory.meta, f"flight {fid}: trajectory.meta")
    tr = rec.trajectory
    for name in ("priority", "max_delay_s"):
        v = getattr(tr, name)
        try:
            ok = math.isfinite(float(v))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise InvalidRecordError(
                f"flight {fid}: trajectory.{name} must be a finite number, got {v!r}"
            )
    blobs = _blobs(rec)
    row = (
        fid,
        rec.operator_id,
        rec.request_id,
        rec.status,
        rec.priority,
        rec.created_s,
        rec.cancelled_s,
        tr.t_start_s,
        tr.t_end_s,
        int(tr.t_s.shape[0]),
        *blobs,
        _crc(blobs),
        meta_s,
        str(tr.flight_id),
        float(tr.priority),
        float(tr.max_delay_s),
        tmeta_s,
        rec.request_digest,
        rec.cancel_reason,
    )
    return _decode(row), row


def _arr(b: bytes, shape) -> np.ndarray:
    return np.frombuffer(b, dtype=_F8).reshape(shape).astype(np.float64)  # own copy


def _decode(row) -> FlightRecord:
    (
        fid,
        op,
        req,
        status,
        prio,
        created,
        cancelled,
        _t0,
        _t1,
        n,
        xyz,
        t,
        lonlat,
        amsl,
        agl,
        crc,
        meta,
        traj_id,
        traj_prio,
        traj_maxd,
        traj_meta,
        digest,
        cancel_reason,
    ) = row
    try:
        n = int(n)
        blobs = (xyz, t, lonlat, amsl, agl)
        sizes = (24 * n, 8 * n, 16 * n, 8 * n, 8 * n)
        if any(
            not isinstance(b, bytes) or len(b) != s
            for b, s in zip(blobs, sizes, strict=True)
        ):
            raise ValueError("array lengths do not match n_points")
        if _crc(blobs) != crc:
            raise ValueError("CRC mismatch")
        traj = Trajectory(
            traj_id,
            _arr(xyz, (n, 3)),
            _arr(t, (n,)),
            traj_prio,
            traj_maxd,
            json.loads(traj_meta),
        )
        return FlightRecord(
            flight_id=fid,
            operator_id=op,
            request_id=req,
            status=status,
            trajectory=traj,
            lonlat_deg=_arr(lonlat, (n, 2)),
            alt_amsl_m=_arr(amsl, (n,)),
            alt_agl_m=_arr(agl, (n,)),
            priority=prio,
            created_s=created,
            cancelled_s=cancelled,
            meta=json.loads(meta),
            request_digest=digest,
            cancel_reason=cancel_reason,
        )
    except (ValueError, TypeError, InvalidRecordError) as exc:
        raise StoreCorruptError(
            f"flight {fid}: stored row does not decode: {exc}"
        ) from exc


# ------------------------------------------------------------------------------- store
class Store:
    """The SQLite store (see module docstring).

    Parameters
    ----------
    path : str or Path
        The database file; created with its schema if missing (the parent directory
        must exist). ``-wal`` and ``-shm`` files live beside it.

    Raises
    ------
    StoreVersionError
        The file was written by a newer schema version, or is not a SkyTwin store.
    StoreError
        The directory does not exist or the file cannot be opened.

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> s = Store(os.path.join(d, "sky.db"))
    >>> s.get_flight("F-nope") is None, s.list_zones(), s.get_twin_ref()
    (True, [], None)
    >>> s.close()
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise StoreError(
                f"store {self.path}: directory {self.path.parent} does not exist"
            )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._closed = False
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._commits = 0
        self._writes = 0
        conn = self._conn()
        try:
            self._init_schema(conn)
            writer_conn = self._open()
        except BaseException:
            self.close()
            raise
        self._writer = threading.Thread(
            target=self._write_loop,
            args=(writer_conn,),
            daemon=True,
            name=f"skytwin-store-writer:{self.path.name}",
        )
        self._writer.start()

    # -- connections -------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        """A new connection with the store's pragmas, registered for :meth:`close`."""
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self.path} is closed")
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(
                        f"store {self.path}: cannot enable WAL (got {mode})"
                    )
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.OperationalError as exc:  # permissions, locks, I/O
                raise StoreError(f"store {self.path}: cannot open: {exc}") from exc
            except sqlite3.DatabaseError as exc:  # "file is not a database"
                raise StoreVersionError(
                    f"store {self.path}: cannot open as SQLite: {exc}"
                ) from exc
            self._conns.append(conn)
            return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's reading connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        elif self._closed:
            raise StoreClosedError(f"store {self.path} is closed")
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise StoreVersionError(
                f"store {self.path}: not a database: {exc}"
            ) from exc
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            if version == 0 and app == 0 and tables == 0:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        conn.execute(stmt)
                for stmt in (*_LIVE_TABLES, *_GROUND_TABLES):
                    conn.execute(stmt)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif app != APPLICATION_ID:
                raise StoreVersionError(
                    f"store {self.path}: not a SkyTwin store (application_id {app:#x}, "
                    f"{tables} tables); use a new file"
                )
            elif version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"store {self.path}: schema version {version} is newer than this "
                    f"SkyTwin supports ({SCHEMA_VERSION}); upgrade SkyTwin"
                )
            elif version < SCHEMA_VERSION:
                for v in range(version, SCHEMA_VERSION):
                    if v not in _MIGRATIONS:
                        raise StoreVersionError(
                            f"store {self.path}: schema version {version} is older "
                            f"than {SCHEMA_VERSION} and no migration exists"
                        )
                    for stmt in _MIGRATIONS[v]:
                        conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Finish the queued writes, stop the writer thread and close every
        connection this store opened (idempotent)."""
        with self._lock:
            was_closed, self._closed = self._closed, True
            if not was_closed and self._writer is not None:
                self._queue.put(None)  # after every write already queued
        if self._writer is not None and self._writer is not threading.current_thread():
            self._writer.join()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- group commit ------------------------------------------------------------------
    def _write(self, fn):
        """Run ``fn(conn)`` on the writer thread inside a committed transaction and
        return its result (or raise its exception) once the commit is on disk."""
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self.path} is closed")
            if self._writer is None or not self._writer.is_alive():  # pragma: no cover
                raise StoreUnavailableError(f"store {self.path}: the writer thread has "
                                            "stopped")
            self._queue.put((fn, fut))
        return fut.result()

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                break
            group = [item]
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
            self._commit_group(conn, group)

    def _commit_group(self, conn: sqlite3.Connection, group: list) -> None:
        """One transaction for every queued write; each in its own savepoint so that
        a failing write rolls back alone. Results are released only after COMMIT."""
        outcomes = []
        if len(group) == 1:       # alone: a failing write rolls back the transaction
            self._commit_one(conn, *group[0])
            return
        committing = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, fut in group:
                conn.execute("SAVEPOINT w")
                try:
                    out = fn(conn)
                except Exception as exc:  # noqa: BLE001 - the caller gets it
                    conn.execute("ROLLBACK TO w")  # fails if SQLite dropped the tx
                    conn.execute("RELEASE w")
                    outcomes.append((fut, False, exc))
                else:
                    conn.execute("RELEASE w")
                    outcomes.append((fut, True, out))
            committing = True
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - tx lost: fail every write
            # (a write whose own function failed was rolled back to its savepoint: it
            # keeps its own error, whatever happened to the others)
            failed = {f for f, ok, _v in outcomes if not ok}
            self._lost(conn, exc, [fut for _fn, fut in group if fut not in failed],
                       committing)
            for fut, ok, value in outcomes:
                if not ok:
                    fut.set_exception(value)
            return
        self._commits += 1
        self._writes += len(group)
        for fut, ok, value in outcomes:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _commit_one(self, conn: sqlite3.Connection, fn, fut: Future) -> None:
        """:meth:`_commit_group` of one write, without its savepoint (two statements,
        each a GIL hand-over on a busy server, fewer): the write's own exception
        rolls the transaction back and is the caller's; a failed COMMIT fails it as
        in a group."""
        committing = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except Exception as exc:  # noqa: BLE001 - the caller gets it
                conn.execute("ROLLBACK")
                fut.set_exception(exc)
                return
            committing = True
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - tx lost: fail the write
            self._lost(conn, exc, [fut], committing)
            return
        self._commits += 1
        self._writes += 1
        fut.set_result(out)

    def _lost(self, conn: sqlite3.Connection, exc: BaseException, futs,
              committing: bool = False) -> None:
        """A write transaction failed: roll back what is left and fail every write of
        it (:class:`StoreWriteError`). Nothing of it is acknowledged. If COMMIT itself
        failed (``committing``), the rows may or may not be on disk, like a crash before
        the acknowledgement: :class:`CommitUncertainError`, and a retry with the same
        request id finds them if they are."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:  # pragma: no cover - nothing more to undo
            pass
        err = write_failure(self.path, exc, committing)
        err.__cause__ = exc
        for fut in futs:
            fut.set_exception(err)

    def write_stats(self) -> dict:
        """``{"writes", "commits"}`` since open: ``writes / commits`` is the mean
        group-commit size (1.0 when writes never overlap)."""
        return {"writes": self._writes, "commits": self._commits}

    def _read(self, sql, args=()):
        return self._conn().execute(sql, args).fetchall()

    @staticmethod
    def _event(conn, kind, id_, time_s, actor, reason=None):
        conn.execute(
            "INSERT INTO events (kind, id, time_s, actor, reason) VALUES (?, ?, ?, ?, ?)",
            (kind, id_, float(time_s), str(actor), reason),
        )

    # -- flights -----------------------------------------------------------------------
    def _insert(self, conn, norm: FlightRecord, row: tuple) -> FlightRecord:
        got = conn.execute(
            f"SELECT {_FLIGHT_COLS} FROM flights "
            "WHERE operator_id = ? AND request_id = ?",
            (norm.operator_id, norm.request_id),
        ).fetchone()
        if got is not None:
            return _decode(got)
        try:
            conn.execute(
                f"INSERT INTO flights ({_FLIGHT_COLS}) VALUES "
                f"({', '.join('?' * len(row))})",
                row,
            )
        except sqlite3.IntegrityError as exc:
            raise StoreConflictError(
                f"flight {norm.flight_id} (operator {norm.operator_id}, request "
                f"{norm.request_id}) cannot be stored: {exc}; nothing was written"
            ) from exc
        self._event(
            conn, "flight_accepted", norm.flight_id, norm.created_s, norm.operator_id
        )
        return norm

    @staticmethod
    def _prepare(rec):
        if not isinstance(rec, FlightRecord):
            raise InvalidRecordError(
                f"expected a FlightRecord, got {type(rec).__name__}"
            )
        if rec.status != "accepted":
            raise InvalidRecordError(
                f"flight {rec.flight_id}: add_flight stores accepted flights, "
                "got status "
                f"{rec.status!r} (use cancel_flight to cancel)"
            )
        return _normalised(rec)

    def add_flight(self, rec: FlightRecord) -> FlightRecord:
        """Store an accepted flight in one transaction, with its ``flight_accepted``
        event (time ``created_s``, actor ``operator_id``).

        Idempotent: if ``(operator_id, request_id)`` is already stored, the existing
        record is returned unchanged and nothing is written (a retried submit never
        books twice). When this returns, the flight is on disk.

        Returns
        -------
        FlightRecord
            The record exactly as it reads back (``meta`` normalised through JSON), or
            the earlier record for a retried request.

        Raises
        ------
        InvalidRecordError
            Status is not ``"accepted"``, or meta is not JSON-serialisable.
        StoreConflictError
            ``flight_id`` is already used by a different request.
        """
        norm, row = self._prepare(rec)
        return self._write(lambda conn: self._insert(conn, norm, row))

    def add_flights(self, recs: list[FlightRecord]) -> list[FlightRecord]:
        """Store a batch all-or-nothing: one transaction (and one fsync) for all.

        Equivalent to calling :meth:`add_flight` on each record in order, except that
        any failure (validation, a conflicting flight id) leaves no row of the batch.
        A record whose request id is already stored (or appeared earlier in the same
        batch) yields the earlier record.
        """
        prepared = [self._prepare(r) for r in recs]
        if not prepared:
            return []
        return self._write(lambda conn: [self._insert(conn, n, r) for n, r in prepared])

    def get_flight(self, flight_id: str) -> FlightRecord | None:
        """The flight with this id, or ``None``."""
        rows = self._read(
            f"SELECT {_FLIGHT_COLS} FROM flights WHERE flight_id = ?", (flight_id,)
        )
        return _decode(rows[0]) if rows else None

    def find_request(self, operator_id: str, request_id: str) -> FlightRecord | None:
        """The flight booked by ``operator_id`` under ``request_id``, or ``None``."""
        rows = self._read(
            f"SELECT {_FLIGHT_COLS} FROM flights "
            "WHERE operator_id = ? AND request_id = ?",
            (operator_id, request_id),
        )
        return _decode(rows[0]) if rows else None

    def list_flights(
        self,
        operator_id: str | None = None,
        status: str | None = None,
        t0_s: float | None = None,
        t1_s: float | None = None,
        limit: int = 1000,
        after_flight_id: str | None = None,
    ) -> list[FlightRecord]:
        """Flights in acceptance order, filtered, one page at a time.

        Parameters
        ----------
        operator_id, status : str, optional
            Only this operator's flights / only this status.
        t0_s, t1_s : float, optional
            Only flights whose trajectory span ``[t_start, t_end]`` overlaps the closed
            interval ``[t0_s, t1_s]`` (either end may be open).
        limit : int
            Page size (>= 1).
        after_flight_id : str, optional
            Paging cursor: the last flight id of the previous page. The order
            (acceptance order) is stable, and flights are never deleted, so pages
            neither repeat nor skip a flight.

        Raises
        ------
        StoreNotFoundError
            ``after_flight_id`` is not a stored flight.
        InvalidRecordError
            ``limit`` < 1 or an unknown status.
        """
        if not isinstance(limit, int) or limit < 1:
            raise InvalidRecordError(f"limit must be an integer >= 1, got {limit!r}")
        if status is not None and status not in FLIGHT_STATUSES:
            raise InvalidRecordError(
                f"status must be one of {FLIGHT_STATUSES}, got {status!r}"
            )
        where, args = [], []
        if after_flight_id is not None:
            got = self._read(
                "SELECT seq FROM flights WHERE flight_id = ?", (after_flight_id,)
            )
            if not got:
                raise StoreNotFoundError(
                    f"paging cursor after_flight_id={after_flight_id!r}: no such flight"
                )
            where.append("seq > ?")
            args.append(got[0][0])
        if operator_id is not None:
            where.append("operator_id = ?")
            args.append(operator_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if t0_s is not None:
            where.append("t_end_s >= ?")
            args.append(float(t0_s))
        if t1_s is not None:
            where.append("t_start_s <= ?")
            args.append(float(t1_s))
        sql = f"SELECT {_FLIGHT_COLS} FROM flights"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq LIMIT ?"
        return [_decode(r) for r in self._read(sql, (*args, limit))]

    def cancel_flight(
        self,
        flight_id: str,
        now_s: float,
        actor: str | None = None,
        reason: str | None = None,
    ) -> FlightRecord:
        """Mark a flight cancelled at ``now_s`` (with its ``flight_cancelled`` event).

        Cancelling an already cancelled flight is a no-op that returns the stored record
        (its first ``cancelled_s``) and writes no event. ``actor`` (default: the
        flight's operator) and ``reason`` are recorded in the event (the reason also
        with the flight). Ownership checks are the service's job.

        Raises
        ------
        StoreNotFoundError
            No such flight.
        """
        now_s = float(now_s)
        if not math.isfinite(now_s):
            raise InvalidRecordError(f"now_s must be finite, got {now_s!r}")

        def tx(conn):
            row = conn.execute(
                f"SELECT {_FLIGHT_COLS} FROM flights WHERE flight_id = ?", (flight_id,)
            ).fetchone()
            if row is None:
                raise StoreNotFoundError(f"flight {flight_id!r} not found")
            rec = _decode(row)
            if rec.status == "cancelled":
                return rec
            conn.execute(
                "UPDATE flights SET status = 'cancelled', cancelled_s = ?, "
                "cancel_reason = ? WHERE flight_id = ?",
                (now_s, reason, flight_id),
            )
            self._event(
                conn,
                "flight_cancelled",
                flight_id,
                now_s,
                rec.operator_id if actor is None else actor,
                reason,
            )
            return replace(
                rec, status="cancelled", cancelled_s=now_s, cancel_reason=reason
            )

        return self._write(tx)

    def accepted_flights(self, t_from_s: float | None = None) -> list[FlightRecord]:
        """Every accepted (not cancelled) flight, in acceptance order; with
        ``t_from_s``, only those whose trajectory ends at or after it (not yet ended).

        This is what the service loads at start-up to rebuild its reservation index.
        """
        sql = f"SELECT {_FLIGHT_COLS} FROM flights WHERE status = 'accepted'"
        args: tuple = ()
        if t_from_s is not None:
            sql += " AND t_end_s >= ?"
            args = (float(t_from_s),)
        return [_decode(r) for r in self._read(sql + " ORDER BY seq", args)]

    def count_flights(self, status: str | None = None) -> int:
        """Number of stored flights (of one status if given)."""
        if status is None:
            return self._read("SELECT count(*) FROM flights")[0][0]
        return self._read("SELECT count(*) FROM flights WHERE status = ?", (status,))[
            0
        ][0]

    # -- zones -------------------------------------------------------------------------
    def put_zone(self, zone: Zone, actor: str, now_s: float) -> None:
        """Insert or replace a zone (by id), with its ``zone_put`` event."""
        body = zone_to_json(zone)

        def tx(conn):
            conn.execute(
                "INSERT OR REPLACE INTO zones (zone_id, body, actor, updated_s) "
                "VALUES (?, ?, ?, ?)",
                (zone.id, body, str(actor), float(now_s)),
            )
            self._event(conn, "zone_put", zone.id, now_s, actor)

        self._write(tx)

    def delete_zone(self, zone_id: str, actor: str, now_s: float) -> None:
        """Delete a zone, with its ``zone_deleted`` event.

        Raises
        ------
        StoreNotFoundError
            No such zone.
        """

        def tx(conn):
            cur = conn.execute("DELETE FROM zones WHERE zone_id = ?", (zone_id,))
            if cur.rowcount == 0:
                raise StoreNotFoundError(f"zone {zone_id!r} not found")
            self._event(conn, "zone_deleted", zone_id, now_s, actor)

        self._write(tx)

    def get_zone(self, zone_id: str) -> Zone | None:
        """The zone with this id, or ``None``."""
        rows = self._read("SELECT body FROM zones WHERE zone_id = ?", (zone_id,))
        return zone_from_json(rows[0][0]) if rows else None

    def list_zones(self) -> list[Zone]:
        """Every stored zone, ordered by id."""
        return [
            zone_from_json(b)
            for (b,) in self._read("SELECT body FROM zones ORDER BY zone_id")
        ]

    # -- derived-zone overrides (issue 13) ---------------------------------------------
    def put_derived_override(self, zone_id: str, body: dict, actor: str,
                             now_s: float) -> None:
        """Insert or replace a regulator's override of a derived zone (a JSON object,
        see :mod:`server.ground`), with a ``zone_put`` event (the change's sequence
        number survives restarts like any zone change's)."""
        text = json.dumps(body, sort_keys=True)

        def tx(conn):
            conn.execute(
                "INSERT OR REPLACE INTO derived_overrides (zone_id, body, actor, "
                "updated_s) VALUES (?, ?, ?, ?)", (zone_id, text, str(actor), float(now_s)))
            self._event(conn, "zone_put", zone_id, now_s, actor)

        self._write(tx)

    def delete_derived_override(self, zone_id: str, actor: str, now_s: float) -> None:
        """Drop the override of a derived zone (none: nothing happens), with an event."""

        def tx(conn):
            conn.execute("DELETE FROM derived_overrides WHERE zone_id = ?", (zone_id,))
            self._event(conn, "zone_put", zone_id, now_s, actor)

        self._write(tx)

    def list_derived_overrides(self) -> dict:
        """``{zone_id: (body dict, actor, updated_s)}`` of every override."""
        return {z: (json.loads(b), a, float(t)) for z, b, a, t in self._read(
            "SELECT zone_id, body, actor, updated_s FROM derived_overrides")}

    # -- twin reference ----------------------------------------------------------------
    def set_twin_ref(self, ref: dict) -> None:
        """Record which twin the service runs on (a JSON-serialisable dict, e.g.
        ``{"path", "sha256", "resolution_m", "clearance_m"}``); replaces the
        previous one."""
        if not isinstance(ref, dict):
            raise InvalidRecordError(
                f"twin ref must be a dict, got {type(ref).__name__}"
            )
        body = _dumps(ref, "twin ref")
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO twin_ref (one, body) VALUES (1, ?)", (body,)
            )
        )

    def get_twin_ref(self) -> dict | None:
        """The recorded twin reference, or ``None``."""
        rows = self._read("SELECT body FROM twin_ref WHERE one = 1")
        return json.loads(rows[0][0]) if rows else None

    # -- change log --------------------------------------------------------------------
    def events_since(self, seq: int, limit: int = 1000) -> list[dict]:
        """Events with sequence number > ``seq``, oldest first, at most ``limit``.

        Each is ``{"seq", "kind", "id", "time_s", "actor", "reason"}`` (``reason``
        ``None`` unless given); ``kind`` is one of
        :data:`EVENT_KINDS`. Sequence numbers increase strictly and are never reused,
        so the last ``seq`` seen is a cursor that survives restarts.
        """
        rows = self._read(
            "SELECT seq, kind, id, time_s, actor, reason FROM events "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (int(seq), int(limit)),
        )
        return [
            dict(zip(("seq", "kind", "id", "time_s", "actor", "reason"), r, strict=True))
            for r in rows
        ]

    # -- live operations (issue 11) ---------------------------------------------------
    def add_lifecycle_events(self, events) -> list[int]:
        """Store lifecycle transitions durably, each with its ``flight_state`` change
        event, in one transaction; returns their ``lifecycle`` sequence numbers.

        ``events``: tuples ``(flight_id, from_state, to_state, actor, time_s, reason,
        detail)``. A route change (an accepted advisory) is a row with
        ``from_state == to_state``.
        """
        rows = [(str(f), str(a), str(b), str(ac), float(t), str(r or ""), str(d or ""))
                for f, a, b, ac, t, r, d in events]

        def tx(conn):
            out = []
            for row in rows:
                cur = conn.execute(
                    "INSERT INTO lifecycle (flight_id, from_state, to_state, actor, time_s, "
                    "reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                out.append(cur.lastrowid)
                self._event(conn, "flight_state", row[0], row[4], row[3],
                            f"{row[1]}->{row[2]}: {row[5]}")
            return out

        return self._write(tx) if rows else []

    def lifecycle_events(self, flight_id: str) -> list[tuple]:
        """``[(seq, Transition)]`` of one flight, oldest first."""
        from skytwin.live.lifecycle import Transition
        rows = self._read(
            "SELECT seq, flight_id, from_state, to_state, actor, time_s, reason, detail "
            "FROM lifecycle WHERE flight_id = ? ORDER BY seq", (str(flight_id),))
        return [(r[0], Transition(*r[1:])) for r in rows]

    def lifecycle_states(self) -> dict:
        """``{flight_id: (state, time_s)}``: the newest lifecycle state of every flight
        that has one."""
        rows = self._read(
            "SELECT l.flight_id, l.to_state, l.time_s FROM lifecycle l JOIN "
            "(SELECT flight_id, max(seq) AS m FROM lifecycle GROUP BY flight_id) x "
            "ON l.seq = x.m")
        return {f: (st, t) for f, st, t in rows}

    def add_track_points(self, rows) -> int:
        """Append accepted reports ``(flight_id, t_s, lon_deg, lat_deg, alt_amsl_m)``
        in one transaction (a repeated (flight, time) keeps the first)."""
        rows = [(str(f), float(t), float(lo), float(la), float(al))
                for f, t, lo, la, al in rows]

        def tx(conn):
            conn.executemany("INSERT OR IGNORE INTO track_points VALUES (?, ?, ?, ?, ?)",
                             rows)
            return len(rows)

        return self._write(tx) if rows else 0

    def track_points(self, flight_id: str, t0_s: float = -math.inf,
                     t1_s: float = math.inf) -> list[tuple]:
        """Stored reports of one flight in ``[t0_s, t1_s]``, oldest first."""
        return self._read(
            "SELECT t_s, lon_deg, lat_deg, alt_amsl_m FROM track_points "
            "WHERE flight_id = ? AND t_s >= ? AND t_s <= ? ORDER BY t_s",
            (str(flight_id), float(max(t0_s, -1e300)), float(min(t1_s, 1e300))))

    def prune_track_points(self, before_s: float) -> int:
        """Delete stored reports older than ``before_s`` (the retention)."""
        return self._write(lambda conn: conn.execute(
            "DELETE FROM track_points WHERE t_s < ?", (float(before_s),)).rowcount)

    def replace_trajectory(self, flight_id: str, trajectory, lonlat_deg, alt_agl_m,
                           now_s: float, actor: str, reason: str = "") -> FlightRecord:
        """A new approved trajectory for an accepted flight (an accepted advisory);
        recorded as a lifecycle row ``state -> state`` with ``reason``."""
        old = self.get_flight(flight_id)
        if old is None:
            raise StoreNotFoundError(f"flight {flight_id} not found")
        tr = Trajectory(old.trajectory.flight_id, trajectory.xyz_m, trajectory.t_s,
                        old.trajectory.priority, old.trajectory.max_delay_s,
                        dict(old.trajectory.meta))
        new = replace(old, trajectory=tr, lonlat_deg=np.asarray(lonlat_deg, np.float64),
                      alt_amsl_m=tr.xyz_m[:, 2].copy(),
                      alt_agl_m=np.asarray(alt_agl_m, np.float64))
        norm, row = _normalised(new)
        blobs = _blobs(norm)

        def tx(conn):
            st = conn.execute("SELECT to_state FROM lifecycle WHERE flight_id = ? "
                              "ORDER BY seq DESC LIMIT 1", (flight_id,)).fetchone()
            state = st[0] if st else "accepted"
            conn.execute(
                "UPDATE flights SET t_start_s = ?, t_end_s = ?, n_points = ?, xyz_m = ?, "
                "t_s = ?, lonlat_deg = ?, alt_amsl_m = ?, alt_agl_m = ?, crc32 = ? "
                "WHERE flight_id = ?",
                (tr.t_start_s, tr.t_end_s, len(tr.t_s), *blobs, _crc(blobs), flight_id))
            conn.execute(
                "INSERT INTO lifecycle (flight_id, from_state, to_state, actor, time_s, "
                "reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (flight_id, state, state, str(actor), float(now_s), "rerouted",
                 str(reason)))
            self._event(conn, "flight_state", flight_id, now_s, actor,
                        f"{state}->{state}: rerouted")
            return norm

        return self._write(tx)

    def last_event_seq(self) -> int:
        """The newest event's sequence number (0 when there is none)."""
        return self._read("SELECT coalesce(max(seq), 0) FROM events")[0][0]

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check`` plus decoding every flight row and zone.

        Returns
        -------
        list of str
            Problems found; empty when the store is sound.
        """
        problems = [r[0] for r in self._read("PRAGMA integrity_check") if r[0] != "ok"]
        for row in self._read(f"SELECT {_FLIGHT_COLS} FROM flights"):
            try:
                _decode(row)
            except StoreCorruptError as exc:
                problems.append(str(exc))
        for zid, body in self._read("SELECT zone_id, body FROM zones"):
            try:
                zone_from_json(body)
            except Exception as exc:  # noqa: BLE001 - report, do not stop
                problems.append(f"zone {zid}: stored body does not decode: {exc}")
        return problems
