"""The PostgreSQL store: several ``skytwin serve`` instances share one airspace (issue 14).

Design
------
:class:`PgStore` has the public interface and the semantics of
:class:`server.store.Store` (same records in and out, same idempotency, same event
kinds, same error classes), on PostgreSQL through psycopg 3, so that the service core
does not know which one it runs on. ``skytwin serve --db postgresql://...`` selects it
(:func:`open_store`); SQLite stays the embedded default.

Schema (version :data:`server.store.SCHEMA_VERSION`, kept in ``skytwin_meta``; the
same tables and columns as the SQLite store, PostgreSQL types)::

    skytwin_meta(key TEXT PRIMARY KEY, value TEXT)  -- application 'SkyT', schema_version
    flights(seq BIGSERIAL PRIMARY KEY, flight_id UNIQUE, ..., UNIQUE (operator_id,
            request_id), CHECKs on status, lengths of the float64 BYTEA arrays, crc32)
    zones(zone_id PRIMARY KEY, body, actor, updated_s)
    twin_ref(one = 1, body)
    events(seq BIGSERIAL PRIMARY KEY, kind CHECK (...), id, time_s, actor, reason)
    lifecycle(seq BIGSERIAL, flight_id, from_state, to_state, actor, time_s, reason,
              detail)                                   -- live operations (schema v3)
    track_points(flight_id, t_s, lon_deg, lat_deg, alt_amsl_m, PRIMARY KEY (flight_id,
                 t_s))

Rows are encoded and decoded by the SQLite store's own functions (``_normalised``,
``_decode``: float64 bytes, CRC-32 checked on read), so a flight reads back bit for bit
from either store. Migrations: the schema is created at version 3 (the first version
this store supports); :data:`PG_MIGRATIONS` maps an older version to its statements, and
a newer version or a database that is not a SkyTwin store raises
:class:`~server.store.StoreVersionError`, as for SQLite. Creating or migrating the
schema holds an advisory lock, so instances starting together do not race.

Crash safety. Every write is one transaction, committed with PostgreSQL's default
``synchronous_commit = on``: when a call returns, its WAL record is flushed to disk, so
an instance killed with SIGKILL (or the database server losing power) keeps every
acknowledged booking, as with SQLite's ``synchronous=FULL``. An instance that dies
mid-transaction leaves nothing (the server rolls the transaction back when the
session ends).

Event order across instances. The ``events`` sequence is the Watch cursor and the
feed other instances follow (:meth:`events_since`), so a row with a lower number must
never become visible after one with a higher number (a follower would skip it). A
BIGSERIAL alone does not promise that: two transactions can take numbers 7 and 8 and
commit 8 first. Every write transaction therefore takes the transaction-level advisory
lock :data:`EVENTS_LOCK` before it writes its event rows; events commit in sequence
order (writes are serialised in the database; their fsyncs are not shared as the
SQLite writer's group commit shares them, see benchmarks/RESULTS.md "Scale").
Each write sends ``NOTIFY skytwin_events`` (delivered at commit) so that followers wake
at once (:meth:`listen`); they also poll, so a lost notification only delays.

Bookings across instances (:meth:`booking_lock`): a session-level advisory lock
(:data:`BOOKING_LOCK`) on a connection of its own, held by the service core around
"catch up with the event feed -> place -> check -> commit". A booking made by one
instance is therefore committed, and in the feed, before any other instance places
its next booking: no two instances accept conflicting flights. One lock for the whole
airspace at first; now (issue 14 part 3) a booking holds :data:`BOOKING_LOCK` *shared*
and one advisory lock per space-time partition its flight could occupy
(``pg_advisory_lock(PARTITION_CLASS, id)``, :mod:`server.partitions`), on a lock
session of its thread, so bookings of any instance in disjoint partitions run at once
and bookings that could conflict still serialise (each commits, and is in the feed,
before the next one in its partitions places). Zone changes take it exclusively. If
an instance dies holding locks, PostgreSQL ends its sessions and releases them.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from dataclasses import replace

import numpy as np

from skytwin.planner.trajectory import Trajectory
from skytwin.server.store import (
    _FLIGHT_COLS,
    APPLICATION_ID,
    FLIGHT_STATUSES,
    SCHEMA_VERSION,
    FlightRecord,
    InvalidRecordError,
    StoreClosedError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    StoreVersionError,
    _blobs,
    _crc,
    _decode,
    _dumps,
    _normalised,
    write_failure,
    zone_from_json,
    zone_to_json,
)

__all__ = ["BOOKING_LOCK", "EVENTS_LOCK", "PG_MIGRATIONS", "PgStore", "is_pg_dsn",
           "open_store"]

EVENTS_LOCK = 0x536B7901    # pg_advisory_xact_lock key: event rows commit in order
BOOKING_LOCK = 0x536B7902   # pg_advisory_lock key: one booking at a time, all instances
SCHEMA_LOCK = 0x536B7903    # pg_advisory_xact_lock key: schema creation / migration
PARTITION_CLASS = 0x536B7904   # pg_advisory_lock(class, id): one booking partition


def partition_lock_id(key) -> int:
    """The int4 advisory lock id of a space-time partition key (CRC-32 of its text;
    two keys sharing an id only serialise more, never less)."""
    import zlib
    v = zlib.crc32(repr(tuple(int(x) for x in key)).encode())
    return v - (1 << 32) if v >= (1 << 31) else v
CHANNEL = "skytwin_events"
_GROUND_TABLES = (  # v4 (issue 13): a regulator's overrides of derived zones
    """CREATE TABLE IF NOT EXISTS derived_overrides (zone_id TEXT PRIMARY KEY,
    body TEXT NOT NULL, actor TEXT NOT NULL, updated_s DOUBLE PRECISION NOT NULL)""",
)
PG_MIGRATIONS: dict = {3: _GROUND_TABLES}    # from version -> statements (created at v3)

_SCHEMA = (
    "CREATE TABLE skytwin_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE flights (
    seq BIGSERIAL PRIMARY KEY,
    flight_id TEXT NOT NULL UNIQUE,
    operator_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'cancelled')),
    priority DOUBLE PRECISION NOT NULL,
    created_s DOUBLE PRECISION NOT NULL,
    cancelled_s DOUBLE PRECISION,
    t_start_s DOUBLE PRECISION NOT NULL,
    t_end_s DOUBLE PRECISION NOT NULL CHECK (t_end_s >= t_start_s),
    n_points INTEGER NOT NULL CHECK (n_points >= 2),
    xyz_m BYTEA NOT NULL CHECK (length(xyz_m) = 24 * n_points),
    t_s BYTEA NOT NULL CHECK (length(t_s) = 8 * n_points),
    lonlat_deg BYTEA NOT NULL CHECK (length(lonlat_deg) = 16 * n_points),
    alt_amsl_m BYTEA NOT NULL CHECK (length(alt_amsl_m) = 8 * n_points),
    alt_agl_m BYTEA NOT NULL CHECK (length(alt_agl_m) = 8 * n_points),
    crc32 BIGINT NOT NULL,
    meta TEXT NOT NULL,
    traj_id TEXT NOT NULL,
    traj_priority DOUBLE PRECISION NOT NULL,
    traj_max_delay_s DOUBLE PRECISION NOT NULL,
    traj_meta TEXT NOT NULL,
    request_digest TEXT,
    cancel_reason TEXT,
    UNIQUE (operator_id, request_id),
    CHECK ((status = 'cancelled') = (cancelled_s IS NOT NULL))
)""",
    "CREATE INDEX flights_operator ON flights (operator_id, seq)",
    "CREATE INDEX flights_time ON flights (t_end_s, t_start_s)",
    "CREATE INDEX flights_status ON flights (status, t_end_s)",
    """CREATE TABLE zones (zone_id TEXT PRIMARY KEY, body TEXT NOT NULL,
    actor TEXT NOT NULL, updated_s DOUBLE PRECISION NOT NULL)""",
    "CREATE TABLE twin_ref (one INTEGER PRIMARY KEY CHECK (one = 1), body TEXT NOT NULL)",
    """CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN
        ('flight_accepted', 'flight_cancelled', 'zone_put', 'zone_deleted',
         'flight_state')),
    id TEXT NOT NULL,
    time_s DOUBLE PRECISION NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT)""",
    """CREATE TABLE lifecycle (
    seq BIGSERIAL PRIMARY KEY,
    flight_id TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    time_s DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL)""",
    "CREATE INDEX lifecycle_flight ON lifecycle (flight_id, seq)",
    """CREATE TABLE track_points (
    flight_id TEXT NOT NULL,
    t_s DOUBLE PRECISION NOT NULL,
    lon_deg DOUBLE PRECISION NOT NULL,
    lat_deg DOUBLE PRECISION NOT NULL,
    alt_amsl_m DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (flight_id, t_s))""",
    "CREATE INDEX track_points_time ON track_points (t_s)",
    *_GROUND_TABLES,
)


def is_pg_dsn(db) -> bool:
    """Whether ``db`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))


def open_store(db):
    """:class:`PgStore` for a PostgreSQL URL, else the SQLite :class:`server.store.Store`."""
    if is_pg_dsn(db):
        return PgStore(db)
    from skytwin.server.store import Store
    return Store(db)


def _redact_dsn(dsn: str) -> str:
    import re
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", dsn)


def _row(r):
    """A psycopg row with BYTEA columns as ``bytes`` (it returns memoryview/bytes)."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)


class PgStore:
    """The PostgreSQL store (module docstring). ``shared`` is True: the service core
    follows the event feed and takes :meth:`booking_lock` around bookings."""

    shared = True

    def __init__(self, dsn: str):
        try:
            import psycopg
        except ImportError as exc:   # pragma: no cover - depends on the install
            raise StoreError("--db postgresql://... needs psycopg 3: pip install "
                             "'psycopg[binary]'") from exc
        self._psycopg = psycopg
        self.dsn = dsn
        self.path = _redact_dsn(dsn)      # what error messages name
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list = []
        self._closed = False
        self._writes = 0
        self._lock_conn = None
        self._lock_mutex = threading.Lock()
        self._init_schema()

    # -- connections -------------------------------------------------------------------
    def _open(self, autocommit=True):
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"store {self.path} is closed")
        try:
            conn = self._psycopg.connect(self.dsn, autocommit=autocommit,
                                         connect_timeout=10)
        except self._psycopg.Error as exc:
            raise StoreUnavailableError(f"store {self.path}: cannot connect: {exc}") from exc
        with self._lock:
            self._conns.append(conn)
        return conn

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self._open()
        elif self._closed:
            raise StoreClosedError(f"store {self.path} is closed")
        return conn

    def _init_schema(self) -> None:
        conn = self._conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            have = conn.execute("SELECT to_regclass('skytwin_meta') IS NOT NULL").fetchone()[0]
            n_tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = current_schema()").fetchone()[0]
            if not have and n_tables == 0:
                for stmt in _SCHEMA:
                    conn.execute(stmt)
                conn.execute("INSERT INTO skytwin_meta VALUES ('application_id', %s), "
                             "('schema_version', %s)", (str(APPLICATION_ID),
                                                        str(SCHEMA_VERSION)))
                return
            meta = dict(conn.execute("SELECT key, value FROM skytwin_meta").fetchall()) \
                if have else {}
            if meta.get("application_id") != str(APPLICATION_ID):
                raise StoreVersionError(f"store {self.path}: not a SkyTwin store "
                                        f"({n_tables} tables); use an empty database")
            version = int(meta.get("schema_version", "0"))
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"store {self.path}: schema version {version} is newer than this "
                    f"SkyTwin supports ({SCHEMA_VERSION}); upgrade SkyTwin")
            for v in range(version, SCHEMA_VERSION):
                if v not in PG_MIGRATIONS:
                    raise StoreVersionError(
                        f"store {self.path}: schema version {version} is older than "
                        f"{SCHEMA_VERSION} and no migration exists")
                for stmt in PG_MIGRATIONS[v]:
                    conn.execute(stmt)
            conn.execute("UPDATE skytwin_meta SET value = %s WHERE key = 'schema_version'",
                         (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write_stats(self) -> dict:
        return {"writes": self._writes, "commits": self._writes}

    # -- transactions ------------------------------------------------------------------
    def _write(self, fn):
        """Run ``fn(conn)`` in one transaction holding :data:`EVENTS_LOCK`; returns
        once committed (on disk: synchronous_commit = on)."""
        conn = self._conn()
        committing = False
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (EVENTS_LOCK,))
                out = fn(conn)
                conn.execute(f"NOTIFY {CHANNEL}")
                committing = True      # the block's exit commits
        except (StoreError, InvalidRecordError):
            raise
        except self._psycopg.errors.UniqueViolation as exc:
            raise StoreConflictError(f"store {self.path}: {exc}; nothing was written") \
                from exc
        except self._psycopg.Error as exc:
            raise write_failure(self.path, exc, committing) from exc
        self._writes += 1
        return out

    def _read(self, sql, args=()):
        try:
            return [_row(r) for r in self._conn().execute(sql, args).fetchall()]
        except self._psycopg.Error as exc:
            raise StoreUnavailableError(f"store {self.path}: read failed: {exc}") from exc

    @staticmethod
    def _event(conn, kind, id_, time_s, actor, reason=None):
        conn.execute("INSERT INTO events (kind, id, time_s, actor, reason) "
                     "VALUES (%s, %s, %s, %s, %s)",
                     (kind, id_, float(time_s), str(actor), reason))

    @contextlib.contextmanager
    def booking_lock(self, keys=None):
        """Without ``keys``: hold :data:`BOOKING_LOCK` exclusively (zone changes: no
        booking of any instance runs meanwhile). With ``keys`` (space-time partitions,
        :mod:`server.partitions`): hold it shared, and the advisory lock of each
        partition, in sorted order, on this thread's own lock session."""
        if keys is None:
            with self._lock_mutex:
                if self._lock_conn is None or self._lock_conn.closed:
                    self._lock_conn = self._open()
                self._lock_conn.execute("SELECT pg_advisory_lock(%s)", (BOOKING_LOCK,))
                try:
                    yield
                finally:
                    self._lock_conn.execute("SELECT pg_advisory_unlock(%s)",
                                            (BOOKING_LOCK,))
            return
        conn = getattr(self._local, "lock_conn", None)
        if conn is None or conn.closed:
            conn = self._local.lock_conn = self._open()
        ids = sorted({partition_lock_id(k) for k in keys})
        conn.execute("SELECT pg_advisory_lock_shared(%s)", (BOOKING_LOCK,))
        taken = []
        try:
            for k in ids:
                conn.execute("SELECT pg_advisory_lock(%s, %s)", (PARTITION_CLASS, k))
                taken.append(k)
            yield
        finally:
            for k in reversed(taken):
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (PARTITION_CLASS, k))
            conn.execute("SELECT pg_advisory_unlock_shared(%s)", (BOOKING_LOCK,))

    def listen(self, on_event, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Call ``on_event()`` on every ``NOTIFY skytwin_events`` (and at least every
        ``poll_s``) until ``stop`` is set. Runs on the caller's thread."""
        conn = None
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = self._open()
                    conn.execute(f"LISTEN {CHANNEL}")
                for _ in conn.notifies(timeout=poll_s, stop_after=1):
                    pass
            except Exception:   # noqa: BLE001 - reconnect on the next turn
                if stop.is_set() or self._closed:
                    break
                conn = None
                stop.wait(poll_s)
            if not stop.is_set():
                on_event()

    # -- flights -----------------------------------------------------------------------
    def _insert(self, conn, norm: FlightRecord, row: tuple) -> FlightRecord:
        got = conn.execute(f"SELECT {_FLIGHT_COLS} FROM flights "
                           "WHERE operator_id = %s AND request_id = %s",
                           (norm.operator_id, norm.request_id)).fetchone()
        if got is not None:
            return _decode(_row(got))
        try:
            with conn.transaction():   # savepoint: a conflict leaves the batch clean
                conn.execute(f"INSERT INTO flights ({_FLIGHT_COLS}) VALUES "
                             f"({', '.join(['%s'] * len(row))})", row)
        except self._psycopg.errors.UniqueViolation as exc:
            raise StoreConflictError(
                f"flight {norm.flight_id} (operator {norm.operator_id}, request "
                f"{norm.request_id}) cannot be stored: {exc}; nothing was written"
            ) from exc
        self._event(conn, "flight_accepted", norm.flight_id, norm.created_s,
                    norm.operator_id)
        return norm

    @staticmethod
    def _prepare(rec):
        if not isinstance(rec, FlightRecord):
            raise InvalidRecordError(f"expected a FlightRecord, got {type(rec).__name__}")
        if rec.status != "accepted":
            raise InvalidRecordError(
                f"flight {rec.flight_id}: add_flight stores accepted flights, got status "
                f"{rec.status!r} (use cancel_flight to cancel)")
        return _normalised(rec)

    def add_flight(self, rec: FlightRecord) -> FlightRecord:
        """As :meth:`server.store.Store.add_flight` (idempotent per request id)."""
        norm, row = self._prepare(rec)
        return self._write(lambda conn: self._insert(conn, norm, row))

    def add_flights(self, recs: list[FlightRecord]) -> list[FlightRecord]:
        """As :meth:`server.store.Store.add_flights` (all or nothing)."""
        prepared = [self._prepare(r) for r in recs]
        if not prepared:
            return []
        return self._write(lambda conn: [self._insert(conn, n, r) for n, r in prepared])

    def get_flight(self, flight_id: str) -> FlightRecord | None:
        rows = self._read(f"SELECT {_FLIGHT_COLS} FROM flights WHERE flight_id = %s",
                          (flight_id,))
        return _decode(rows[0]) if rows else None

    def find_request(self, operator_id: str, request_id: str) -> FlightRecord | None:
        rows = self._read(f"SELECT {_FLIGHT_COLS} FROM flights "
                          "WHERE operator_id = %s AND request_id = %s",
                          (operator_id, request_id))
        return _decode(rows[0]) if rows else None

    def list_flights(self, operator_id=None, status=None, t0_s=None, t1_s=None,
                     limit: int = 1000, after_flight_id=None) -> list[FlightRecord]:
        """As :meth:`server.store.Store.list_flights`."""
        if not isinstance(limit, int) or limit < 1:
            raise InvalidRecordError(f"limit must be an integer >= 1, got {limit!r}")
        if status is not None and status not in FLIGHT_STATUSES:
            raise InvalidRecordError(
                f"status must be one of {FLIGHT_STATUSES}, got {status!r}")
        where, args = [], []
        if after_flight_id is not None:
            got = self._read("SELECT seq FROM flights WHERE flight_id = %s",
                             (after_flight_id,))
            if not got:
                raise StoreNotFoundError(
                    f"paging cursor after_flight_id={after_flight_id!r}: no such flight")
            where.append("seq > %s")
            args.append(got[0][0])
        for cond, v in (("operator_id = %s", operator_id), ("status = %s", status)):
            if v is not None:
                where.append(cond)
                args.append(v)
        if t0_s is not None:
            where.append("t_end_s >= %s")
            args.append(float(t0_s))
        if t1_s is not None:
            where.append("t_start_s <= %s")
            args.append(float(t1_s))
        sql = f"SELECT {_FLIGHT_COLS} FROM flights"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq LIMIT %s"
        return [_decode(r) for r in self._read(sql, (*args, limit))]

    def cancel_flight(self, flight_id: str, now_s: float, actor: str | None = None,
                      reason: str | None = None) -> FlightRecord:
        """As :meth:`server.store.Store.cancel_flight`."""
        now_s = float(now_s)
        if not math.isfinite(now_s):
            raise InvalidRecordError(f"now_s must be finite, got {now_s!r}")

        def tx(conn):
            row = conn.execute(f"SELECT {_FLIGHT_COLS} FROM flights WHERE flight_id = %s "
                               "FOR UPDATE", (flight_id,)).fetchone()
            if row is None:
                raise StoreNotFoundError(f"flight {flight_id!r} not found")
            rec = _decode(_row(row))
            if rec.status == "cancelled":
                return rec
            conn.execute("UPDATE flights SET status = 'cancelled', cancelled_s = %s, "
                         "cancel_reason = %s WHERE flight_id = %s",
                         (now_s, reason, flight_id))
            self._event(conn, "flight_cancelled", flight_id, now_s,
                        rec.operator_id if actor is None else actor, reason)
            return replace(rec, status="cancelled", cancelled_s=now_s,
                           cancel_reason=reason)

        return self._write(tx)

    def accepted_flights(self, t_from_s: float | None = None) -> list[FlightRecord]:
        sql = f"SELECT {_FLIGHT_COLS} FROM flights WHERE status = 'accepted'"
        args: tuple = ()
        if t_from_s is not None:
            sql += " AND t_end_s >= %s"
            args = (float(t_from_s),)
        return [_decode(r) for r in self._read(sql + " ORDER BY seq", args)]

    def count_flights(self, status: str | None = None) -> int:
        if status is None:
            return self._read("SELECT count(*) FROM flights")[0][0]
        return self._read("SELECT count(*) FROM flights WHERE status = %s", (status,))[0][0]

    # -- zones -------------------------------------------------------------------------
    def put_zone(self, zone, actor: str, now_s: float) -> None:
        body = zone_to_json(zone)

        def tx(conn):
            conn.execute("INSERT INTO zones (zone_id, body, actor, updated_s) VALUES "
                         "(%s, %s, %s, %s) ON CONFLICT (zone_id) DO UPDATE SET "
                         "body = EXCLUDED.body, actor = EXCLUDED.actor, "
                         "updated_s = EXCLUDED.updated_s",
                         (zone.id, body, str(actor), float(now_s)))
            self._event(conn, "zone_put", zone.id, now_s, actor)

        self._write(tx)

    def delete_zone(self, zone_id: str, actor: str, now_s: float) -> None:
        def tx(conn):
            cur = conn.execute("DELETE FROM zones WHERE zone_id = %s", (zone_id,))
            if cur.rowcount == 0:
                raise StoreNotFoundError(f"zone {zone_id!r} not found")
            self._event(conn, "zone_deleted", zone_id, now_s, actor)

        self._write(tx)

    def get_zone(self, zone_id: str):
        rows = self._read("SELECT body FROM zones WHERE zone_id = %s", (zone_id,))
        return zone_from_json(rows[0][0]) if rows else None

    def list_zones(self) -> list:
        return [zone_from_json(b) for (b,) in
                self._read("SELECT body FROM zones ORDER BY zone_id")]

    # -- derived-zone overrides (issue 13, see Store) ----------------------------------
    def put_derived_override(self, zone_id: str, body: dict, actor: str,
                             now_s: float) -> None:
        text = json.dumps(body, sort_keys=True)

        def tx(conn):
            conn.execute("INSERT INTO derived_overrides (zone_id, body, actor, updated_s) "
                         "VALUES (%s, %s, %s, %s) ON CONFLICT (zone_id) DO UPDATE SET "
                         "body = EXCLUDED.body, actor = EXCLUDED.actor, "
                         "updated_s = EXCLUDED.updated_s",
                         (zone_id, text, str(actor), float(now_s)))
            self._event(conn, "zone_put", zone_id, now_s, actor)

        self._write(tx)

    def delete_derived_override(self, zone_id: str, actor: str, now_s: float) -> None:
        def tx(conn):
            conn.execute("DELETE FROM derived_overrides WHERE zone_id = %s", (zone_id,))
            self._event(conn, "zone_put", zone_id, now_s, actor)

        self._write(tx)

    def list_derived_overrides(self) -> dict:
        return {z: (json.loads(b), a, float(t)) for z, b, a, t in self._read(
            "SELECT zone_id, body, actor, updated_s FROM derived_overrides")}

    # -- twin reference ----------------------------------------------------------------
    def set_twin_ref(self, ref: dict) -> None:
        if not isinstance(ref, dict):
            raise InvalidRecordError(f"twin ref must be a dict, got {type(ref).__name__}")
        body = _dumps(ref, "twin ref")
        conn = self._conn()
        with conn.transaction():    # not a change event: no events lock, no NOTIFY
            conn.execute("INSERT INTO twin_ref (one, body) VALUES (1, %s) ON CONFLICT "
                         "(one) DO UPDATE SET body = EXCLUDED.body", (body,))

    def get_twin_ref(self) -> dict | None:
        rows = self._read("SELECT body FROM twin_ref WHERE one = 1")
        return json.loads(rows[0][0]) if rows else None

    # -- change log --------------------------------------------------------------------
    def events_since(self, seq: int, limit: int = 1000) -> list[dict]:
        rows = self._read("SELECT seq, kind, id, time_s, actor, reason FROM events "
                          "WHERE seq > %s ORDER BY seq LIMIT %s", (int(seq), int(limit)))
        return [dict(zip(("seq", "kind", "id", "time_s", "actor", "reason"), r, strict=True))
                for r in rows]

    def last_event_seq(self) -> int:
        return int(self._read("SELECT coalesce(max(seq), 0) FROM events")[0][0])

    # -- live operations ---------------------------------------------------------------
    def add_lifecycle_events(self, events) -> list[int]:
        rows = [(str(f), str(a), str(b), str(ac), float(t), str(r or ""), str(d or ""))
                for f, a, b, ac, t, r, d in events]

        def tx(conn):
            out = []
            for row in rows:
                out.append(conn.execute(
                    "INSERT INTO lifecycle (flight_id, from_state, to_state, actor, time_s, "
                    "reason, detail) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING seq",
                    row).fetchone()[0])
                self._event(conn, "flight_state", row[0], row[4], row[3],
                            f"{row[1]}->{row[2]}: {row[5]}")
            return out

        return self._write(tx) if rows else []

    def lifecycle_events(self, flight_id: str) -> list[tuple]:
        from skytwin.live.lifecycle import Transition
        rows = self._read(
            "SELECT seq, flight_id, from_state, to_state, actor, time_s, reason, detail "
            "FROM lifecycle WHERE flight_id = %s ORDER BY seq", (str(flight_id),))
        return [(r[0], Transition(*r[1:])) for r in rows]

    def lifecycle_states(self) -> dict:
        rows = self._read(
            "SELECT l.flight_id, l.to_state, l.time_s FROM lifecycle l JOIN "
            "(SELECT flight_id, max(seq) AS m FROM lifecycle GROUP BY flight_id) x "
            "ON l.seq = x.m")
        return {f: (st, t) for f, st, t in rows}

    def add_track_points(self, rows) -> int:
        rows = [(str(f), float(t), float(lo), float(la), float(al))
                for f, t, lo, la, al in rows]
        if not rows:
            return 0
        conn = self._conn()
        with conn.transaction(), conn.cursor() as cur:   # no change event
            cur.executemany("INSERT INTO track_points VALUES (%s, %s, %s, %s, %s) "
                            "ON CONFLICT DO NOTHING", rows)
        return len(rows)

    def track_points(self, flight_id: str, t0_s: float = -math.inf,
                     t1_s: float = math.inf) -> list[tuple]:
        return self._read(
            "SELECT t_s, lon_deg, lat_deg, alt_amsl_m FROM track_points "
            "WHERE flight_id = %s AND t_s >= %s AND t_s <= %s ORDER BY t_s",
            (str(flight_id), float(max(t0_s, -1e300)), float(min(t1_s, 1e300))))

    def prune_track_points(self, before_s: float) -> int:
        conn = self._conn()
        with conn.transaction():
            return conn.execute("DELETE FROM track_points WHERE t_s < %s",
                                (float(before_s),)).rowcount

    def replace_trajectory(self, flight_id: str, trajectory, lonlat_deg, alt_agl_m,
                           now_s: float, actor: str, reason: str = "") -> FlightRecord:
        old = self.get_flight(flight_id)
        if old is None:
            raise StoreNotFoundError(f"flight {flight_id} not found")
        tr = Trajectory(old.trajectory.flight_id, trajectory.xyz_m, trajectory.t_s,
                        old.trajectory.priority, old.trajectory.max_delay_s,
                        dict(old.trajectory.meta))
        new = replace(old, trajectory=tr, lonlat_deg=np.asarray(lonlat_deg, np.float64),
                      alt_amsl_m=tr.xyz_m[:, 2].copy(),
                      alt_agl_m=np.asarray(alt_agl_m, np.float64))
        norm, _row_values = _normalised(new)
        blobs = _blobs(norm)

        def tx(conn):
            st = conn.execute("SELECT to_state FROM lifecycle WHERE flight_id = %s "
                              "ORDER BY seq DESC LIMIT 1", (flight_id,)).fetchone()
            state = st[0] if st else "accepted"
            conn.execute(
                "UPDATE flights SET t_start_s = %s, t_end_s = %s, n_points = %s, "
                "xyz_m = %s, t_s = %s, lonlat_deg = %s, alt_amsl_m = %s, alt_agl_m = %s, "
                "crc32 = %s WHERE flight_id = %s",
                (tr.t_start_s, tr.t_end_s, len(tr.t_s), *blobs, _crc(blobs), flight_id))
            conn.execute(
                "INSERT INTO lifecycle (flight_id, from_state, to_state, actor, time_s, "
                "reason, detail) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (flight_id, state, state, str(actor), float(now_s), "rerouted",
                 str(reason)))
            self._event(conn, "flight_state", flight_id, now_s, actor,
                        f"{state}->{state}: rerouted")
            return norm

        return self._write(tx)

    def integrity_check(self) -> list[str]:
        """Decode every flight row and zone (PostgreSQL checks its own pages)."""
        problems = []
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
