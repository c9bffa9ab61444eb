"""Store schema 3 (issue 11): lifecycle and track tables; version 2 files migrate."""

from __future__ import annotations

import sqlite3

import pytest

from skytwin.server.store import SCHEMA_VERSION, Store

V2_EVENTS = """CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN
        ('flight_accepted', 'flight_cancelled', 'zone_put', 'zone_deleted')),
    id TEXT NOT NULL,
    time_s REAL NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT
)"""


def _zone(i):
    from skytwin.airspace.zones import Altitude, Circle, Zone
    return Zone(id=f"Z{i}", circle=Circle(24.94, 60.17, 50.0), lower=Altitude(0, "AGL"),
                upper=Altitude(100, "AGL"))


def test_version_2_file_is_migrated_and_sequence_numbers_continue(tmp_path):
    db = tmp_path / "v2.db"
    s = Store(db)
    for i in range(3):
        s.put_zone(_zone(i), "reg", 10.0 + i)
    s.delete_zone("Z0", "reg", 20.0)
    old = s.events_since(0)
    s.close()
    with sqlite3.connect(db) as c:      # turn it back into a version 2 file
        c.execute("DROP TABLE lifecycle")
        c.execute("DROP TABLE track_points")
        c.execute("ALTER TABLE events RENAME TO events_old")
        c.execute(V2_EVENTS)
        c.execute("INSERT INTO events SELECT * FROM events_old")
        c.execute("DROP TABLE events_old")
        # a v2 file whose counter ran ahead of its rows (AUTOINCREMENT never reuses)
        c.execute("UPDATE sqlite_sequence SET seq = 9 WHERE name = 'events'")
        c.execute("PRAGMA user_version = 2")
    c.close()
    with pytest.raises(sqlite3.IntegrityError):       # really the old CHECK
        with sqlite3.connect(db) as c:
            c.execute("INSERT INTO events (kind, id, time_s, actor) VALUES "
                      "('flight_state', 'f', 1, 'a')")
    s = Store(db)
    try:
        assert s._conn().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.events_since(0) == old
        seqs = s.add_lifecycle_events([("f1", "accepted", "activated", "service", 30.0,
                                        "first_telemetry", "")])
        assert seqs == [1]
        ev = s.events_since(0)[-1]
        assert (ev["seq"], ev["kind"], ev["reason"]) == (
            10, "flight_state", "accepted->activated: first_telemetry")
        assert s.lifecycle_states() == {"f1": ("activated", 30.0)}
        assert s.integrity_check() == []
    finally:
        s.close()


def test_lifecycle_and_tracks_round_trip(tmp_path):
    s = Store(tmp_path / "s.db")
    try:
        s.add_lifecycle_events([
            ("a", "accepted", "activated", "service", 1.0, "first_telemetry", ""),
            ("b", "accepted", "cancelled", "operator", 2.0, "cancelled", ""),
            ("a", "activated", "nonconforming", "service", 3.0, "out_of_volume", "12 m")])
        assert s.lifecycle_states() == {"a": ("nonconforming", 3.0),
                                        "b": ("cancelled", 2.0)}
        hist = s.lifecycle_events("a")
        assert [(e.to_state, e.reason, e.detail) for _, e in hist] == [
            ("activated", "first_telemetry", ""), ("nonconforming", "out_of_volume", "12 m")]
        assert s.add_track_points([("a", 1.0, 24.9, 60.1, 30.0), ("a", 1.0, 24.9, 60.1, 31.0),
                                   ("a", 2.0, 24.9, 60.1, 32.0)]) == 3
        assert s.track_points("a") == [(1.0, 24.9, 60.1, 30.0), (2.0, 24.9, 60.1, 32.0)]
        assert s.prune_track_points(1.5) == 1
        assert s.track_points("a", 0.0, 10.0) == [(2.0, 24.9, 60.1, 32.0)]
    finally:
        s.close()
