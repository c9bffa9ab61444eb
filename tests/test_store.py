"""Durable state (server/store.py): round trips, idempotency, atomic batches, paging,
threads, schema versions, and SIGKILL in the middle of a write stream."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from skytwin.airspace.errors import AirspaceError
from skytwin.airspace.zones import Altitude, Authority, Circle, Zone
from skytwin.server.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    FlightRecord,
    InvalidRecordError,
    Store,
    StoreClosedError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreNotFoundError,
    StoreVersionError,
    StoreWriteError,
    new_flight_id,
    zone_from_json,
    zone_to_json,
)
from tests.store_crash_worker import T0_S, flight_id, make_record, make_zone

WORKER = Path(__file__).with_name("store_crash_worker.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "sky.db"


@pytest.fixture
def store(db):
    s = Store(db)
    yield s
    s.close()


def _rec(i, run=0, **kw) -> FlightRecord:
    r = make_record(run, i)
    return replace(r, **kw) if kw else r


# ---------------------------------------------------------------------- round trips
def test_flight_round_trip_exact(store, db):
    recs = [_rec(i) for i in range(20)]
    for r in recs:
        assert store.add_flight(r) == r
    store.close()
    with Store(db) as s2:  # a fresh process-like reopen
        for r in recs:
            got = s2.get_flight(r.flight_id)
            assert got == r
            assert np.array_equal(got.trajectory.xyz_m, r.trajectory.xyz_m)
            # bit-exact, including -0.0 and the subnormal
            assert got.trajectory.xyz_m.tobytes() == r.trajectory.xyz_m.tobytes()
            assert got.trajectory.meta == r.trajectory.meta
            assert got.trajectory.xyz_m.flags.writeable  # plain arrays, not views
            assert s2.find_request(r.operator_id, r.request_id) == r
        assert s2.list_flights() == recs
        assert s2.get_flight("F-missing") is None
        assert s2.find_request("op-0", "nope") is None


def test_meta_is_normalised_through_json(store):
    r = _rec(
        0, meta={"start": (1.5, 2.0), "layer": np.int64(2), "delay_s": np.float32(3.5)}
    )
    got = store.add_flight(r)
    assert got.meta == {"start": [1.5, 2.0], "layer": 2, "delay_s": 3.5}
    assert store.get_flight(r.flight_id) == got  # what add returns is what reads back


def test_record_equality_sees_every_array(store):
    r = _rec(1)
    xyz = r.trajectory.xyz_m.copy()
    xyz[-1, 2] = np.nextafter(xyz[-1, 2], np.inf)
    other = replace(r, trajectory=replace(r.trajectory, xyz_m=xyz))
    assert other != r
    agl = r.alt_agl_m.copy()
    agl[0] += 1e-9
    assert replace(r, alt_agl_m=agl) != r


def _zones():
    return [
        Zone(
            id="Z-poly",
            polygon=((4.3, 52.07), (4.31, 52.07), (4.3051234567891, 52.0812)),
            lower=Altitude(12.25, "AMSL"),
            upper=Altitude(0.1 + 0.2, "AGL"),
            window=(T0_S, None),
            reason="event,PRIVACY",
            authority=Authority("City", "ops@city.example"),
            name="Stadium",
        ),
        Zone(
            id="Z-circ",
            circle=Circle(24.94, 60.17, 1 / 3),
            lower=Altitude(-0.0, "AGL"),
            upper=Altitude(120, "AGL"),
        ),
        Zone(
            id="Z-win",
            circle=Circle(-0.0, 0.0, 5e-324 + 1.0),
            lower=Altitude(0, "AGL"),
            upper=Altitude(60, "AGL"),
            window=(None, T0_S + 0.1),
        ),
    ]


def test_zone_round_trip_and_events(store, db):
    zones = _zones()
    for k, z in enumerate(zones):
        assert zone_from_json(zone_to_json(z)) == z
        store.put_zone(z, "reg-1", T0_S + k)
    store.close()
    with Store(db) as s2:
        assert s2.list_zones() == sorted(zones, key=lambda z: z.id)
        assert s2.get_zone("Z-poly") == zones[0]
        moved = replace(zones[1], circle=Circle(24.95, 60.17, 50.0))
        s2.put_zone(moved, "reg-2", T0_S + 10)  # replace by id
        assert s2.get_zone("Z-circ") == moved
        assert len(s2.list_zones()) == 3
        s2.delete_zone("Z-win", "reg-2", T0_S + 11)
        assert [z.id for z in s2.list_zones()] == ["Z-circ", "Z-poly"]
        with pytest.raises(StoreNotFoundError, match=r"zone 'Z-win' not found") as e:
            s2.delete_zone("Z-win", "reg-2", T0_S + 12)
        assert isinstance(e.value, KeyError) and isinstance(e.value, AirspaceError)
        ev = s2.events_since(0)
        assert [(x["kind"], x["id"], x["actor"], x["time_s"]) for x in ev] == [
            ("zone_put", "Z-poly", "reg-1", T0_S),
            ("zone_put", "Z-circ", "reg-1", T0_S + 1),
            ("zone_put", "Z-win", "reg-1", T0_S + 2),
            ("zone_put", "Z-circ", "reg-2", T0_S + 10),
            ("zone_deleted", "Z-win", "reg-2", T0_S + 11),
        ]
        with pytest.raises(InvalidRecordError, match="expected an airspace.zones.Zone"):
            s2.put_zone({"id": "x"}, "reg", 0.0)


def test_twin_ref_round_trip(store, db):
    assert store.get_twin_ref() is None
    ref = {
        "path": "fixtures/city/x.geojson",
        "sha256": "ab" * 32,
        "resolution_m": 2.0,
        "clearance_m": 5.0,
        "layers": [0, 30.5],
    }
    store.set_twin_ref(ref)
    store.set_twin_ref({**ref, "clearance_m": 0.1 + 0.2})
    store.close()
    with Store(db) as s2:
        assert s2.get_twin_ref() == {**ref, "clearance_m": 0.1 + 0.2}
        with pytest.raises(
            InvalidRecordError, match="twin ref must be JSON-serialisable"
        ):
            s2.set_twin_ref({"f": object()})


def test_events_log_flights_and_cursor_survives_reopen(store, db):
    a, b = _rec(0), _rec(1)
    store.add_flight(a)
    store.add_flight(b)
    store.cancel_flight(a.flight_id, T0_S + 500)
    store.cancel_flight(a.flight_id, T0_S + 900)  # no-op: no second event
    store.cancel_flight(b.flight_id, T0_S + 600, actor="admin")
    ev = store.events_since(0)
    assert [(x["kind"], x["id"], x["actor"]) for x in ev] == [
        ("flight_accepted", a.flight_id, a.operator_id),
        ("flight_accepted", b.flight_id, b.operator_id),
        ("flight_cancelled", a.flight_id, a.operator_id),
        ("flight_cancelled", b.flight_id, "admin"),
    ]
    assert ev[0]["time_s"] == a.created_s and ev[2]["time_s"] == T0_S + 500
    assert [x["seq"] for x in ev] == sorted({x["seq"] for x in ev})
    assert store.events_since(ev[1]["seq"], limit=1) == [ev[2]]
    last = store.last_event_seq()
    assert last == ev[-1]["seq"]
    store.close()
    with Store(db) as s2:
        assert s2.events_since(last) == []
        s2.add_flight(_rec(2))
        new = s2.events_since(last)
        assert len(new) == 1 and new[0]["seq"] > last


# ---------------------------------------------------------------------- idempotency
def test_idempotent_add_returns_first_record(store):
    first = _rec(0)
    assert store.add_flight(first) == first
    retry = replace(
        _rec(0), flight_id=new_flight_id(), created_s=T0_S + 99, meta={"other": True}
    )
    got = store.add_flight(retry)
    assert got == first and got.flight_id == first.flight_id
    assert store.get_flight(retry.flight_id) is None
    assert store.count_flights() == 1
    assert len(store.events_since(0)) == 1
    # the same request id under another operator is another booking
    other_op = replace(_rec(0), flight_id="F-other", operator_id="op-x")
    assert store.add_flight(other_op) == other_op
    assert store.count_flights() == 2


def test_flight_id_conflict_is_typed(store):
    store.add_flight(_rec(0))
    dup = replace(_rec(1), flight_id=flight_id(0, 0))
    with pytest.raises(
        StoreConflictError,
        match=r"flight F-000000000000 \(operator op-1, "
        r"request req-0-1\) cannot be stored: UNIQUE constraint failed",
    ):
        store.add_flight(dup)
    assert store.count_flights() == 1


def test_add_rejects_invalid_records(store):
    r = _rec(0)
    with pytest.raises(InvalidRecordError, match="add_flight stores accepted flights"):
        store.add_flight(replace(r, status="cancelled", cancelled_s=T0_S))
    with pytest.raises(InvalidRecordError, match=r"meta must be JSON-serialisable"):
        store.add_flight(replace(r, meta={"x": object()}))
    with pytest.raises(InvalidRecordError, match=r"meta must be JSON-serialisable"):
        store.add_flight(replace(r, meta={"x": float("nan")}))
    with pytest.raises(InvalidRecordError, match=r"alt_agl_m must have shape \(\d+,\)"):
        replace(r, alt_agl_m=r.alt_agl_m[:-1])
    with pytest.raises(
        InvalidRecordError, match=r"lonlat_deg holds a non-finite value"
    ):
        replace(r, lonlat_deg=np.full_like(r.lonlat_deg, np.inf))
    with pytest.raises(InvalidRecordError, match=r"status must be one of"):
        replace(r, status="pending")
    with pytest.raises(
        InvalidRecordError, match=r"cancelled_s must be set exactly when"
    ):
        replace(r, cancelled_s=T0_S)
    with pytest.raises(
        InvalidRecordError, match=r"operator_id must be a non-empty string"
    ):
        replace(r, operator_id="")
    assert store.count_flights() == 0 and store.events_since(0) == []


# ------------------------------------------------------------------------------ batches
def test_batch_is_all_or_nothing_on_constraint(store):
    store.add_flight(_rec(100))
    batch = [_rec(1), _rec(2), replace(_rec(3), flight_id=flight_id(0, 1)), _rec(4)]
    with pytest.raises(StoreConflictError, match="F-000000000001.*nothing was written"):
        store.add_flights(batch)
    assert store.count_flights() == 1  # only the earlier flight
    assert [e["id"] for e in store.events_since(0)] == [flight_id(0, 100)]
    assert store.add_flights(batch[:2] + batch[3:]) == batch[:2] + batch[3:]
    assert store.count_flights() == 4


def test_batch_is_all_or_nothing_on_validation(store):
    batch = [_rec(1), _rec(2), replace(_rec(3), meta={"bad": {1, object()}})]
    with pytest.raises(InvalidRecordError, match="flight F-000000000003: meta"):
        store.add_flights(batch)
    assert store.count_flights() == 0


def test_batch_with_retried_requests(store):
    a = store.add_flight(_rec(1))
    again = replace(
        _rec(2), request_id=a.request_id, operator_id=a.operator_id, flight_id="F-retry"
    )
    twice = replace(_rec(3), flight_id="F-twice")
    twice2 = replace(twice, flight_id="F-twice2")
    got = store.add_flights([again, _rec(4), twice, twice2])
    assert got == [a, _rec(4), twice, twice]
    assert store.count_flights() == 3
    assert store.add_flights([]) == []


# ------------------------------------------------------------------ listing and paging
def _span(r):
    return r.trajectory.t_start_s, r.trajectory.t_end_s


def test_list_filters_and_paging_match_brute_force(store):
    rng = np.random.default_rng(5)
    recs = [_rec(i, run=3) for i in range(120)]
    store.add_flights(recs[:60])
    for r in recs[60:]:
        store.add_flight(r)
    cancelled = set()
    for i in rng.choice(120, 30, replace=False):
        store.cancel_flight(recs[i].flight_id, T0_S + 5000 + i)
        cancelled.add(recs[i].flight_id)
    current = [store.get_flight(r.flight_id) for r in recs]
    assert sum(r.status == "cancelled" for r in current) == 30
    lo = min(_span(r)[0] for r in recs)
    hi = max(_span(r)[1] for r in recs)
    for _ in range(40):
        op = rng.choice([None, "op-0", "op-3"])
        st = rng.choice([None, "accepted", "cancelled"])
        t0 = None if rng.random() < 0.3 else float(rng.uniform(lo, hi))
        t1 = None if rng.random() < 0.3 else float(rng.uniform(lo, hi))
        if t0 is not None and rng.random() < 0.2:
            t1 = _span(recs[int(rng.integers(120))])[0]  # touches a start exactly
            t0 = min(t0, t1)
        want = [
            r
            for r in current
            if (op is None or r.operator_id == op)
            and (st is None or r.status == st)
            and (t0 is None or _span(r)[1] >= t0)
            and (t1 is None or _span(r)[0] <= t1)
        ]
        assert store.list_flights(op, st, t0, t1) == want
        page = int(rng.integers(1, 9))
        got, cursor = [], None
        while True:
            chunk = store.list_flights(
                op, st, t0, t1, limit=page, after_flight_id=cursor
            )
            got += chunk
            if len(chunk) < page:
                break
            cursor = chunk[-1].flight_id
        assert got == want
    with pytest.raises(
        StoreNotFoundError, match="after_flight_id='F-gone': no such flight"
    ):
        store.list_flights(after_flight_id="F-gone")
    with pytest.raises(
        InvalidRecordError, match="limit must be an integer >= 1, got 0"
    ):
        store.list_flights(limit=0)
    with pytest.raises(InvalidRecordError, match="status must be one of"):
        store.list_flights(status="done")


def test_cancel_and_accepted_flights(store):
    recs = [_rec(i, run=4) for i in range(10)]
    store.add_flights(recs)
    c = store.cancel_flight(recs[2].flight_id, T0_S + 1)
    assert c.status == "cancelled" and c.cancelled_s == T0_S + 1
    assert c == store.get_flight(recs[2].flight_id)
    assert store.cancel_flight(recs[2].flight_id, T0_S + 50) == c  # no-op
    with pytest.raises(StoreNotFoundError, match="flight 'F-x' not found") as e:
        store.cancel_flight("F-x", T0_S)
    assert isinstance(e.value, KeyError)
    assert store.accepted_flights() == [r for k, r in enumerate(recs) if k != 2]
    cut = _span(recs[5])[1]
    want = [r for k, r in enumerate(recs) if k != 2 and _span(r)[1] >= cut]
    assert recs[5] in want and store.accepted_flights(cut) == want
    assert store.accepted_flights(cut + 1e6) == []


# ----------------------------------------------------------------------------- threads
def test_concurrent_writers_and_readers(store, db):
    n_threads, per = 4, 40
    errors, results = [], {}

    def writer(k):
        try:
            for j in range(per):
                i = k * per + j
                if j % 10 == 9:
                    store.add_flights([_rec(i, run=5)])
                else:
                    store.add_flight(_rec(i, run=5))
                store.list_flights(limit=5)  # readers interleave with writers
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def same_request(k):
        try:  # every thread submits the same request with its own flight id
            results[k] = store.add_flight(
                replace(_rec(999, run=5), flight_id=f"F-t{k}")
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n_threads)]
    threads += [
        threading.Thread(target=same_request, args=(k,)) for k in range(n_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_flights() == n_threads * per + 1
    winner = {r.flight_id for r in results.values()}
    assert len(winner) == 1  # one booking, every thread got the same record
    assert store.get_flight(winner.pop()) is not None
    ev = store.events_since(0, limit=10_000)
    assert len(ev) == n_threads * per + 1
    assert [e["seq"] for e in ev] == sorted(e["seq"] for e in ev)
    for i in range(n_threads * per):
        assert store.get_flight(flight_id(5, i)) == _rec(i, run=5)


def _hold_writer(store):
    """Block the writer thread on an Event so that the next writes queue up and are
    committed as one group when the event is set."""
    started, release = threading.Event(), threading.Event()

    def block(conn):
        started.set()
        release.wait(10)

    t = threading.Thread(target=store._write, args=(block,))
    t.start()
    assert started.wait(10)
    return release, t


def _submit_all(calls):
    """Run each zero-argument call in its own thread; return {index: (ok, value)}."""
    out = {}

    def run(k, call):
        try:
            out[k] = (True, call())
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            out[k] = (False, exc)

    threads = [threading.Thread(target=run, args=kv) for kv in enumerate(calls)]
    for t in threads:
        t.start()
    return threads, out


def _run_as_one_group(store, calls):
    """Queue ``calls`` behind a held writer, then let them commit as one group; the
    ``{index: (ok, value)}`` of :func:`_submit_all`."""
    release, blocker = _hold_writer(store)
    threads, out = _submit_all(calls)
    deadline = time.monotonic() + 10
    while store._queue.qsize() < len(calls) and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in [blocker, *threads]:
        t.join()
    return out


def test_group_commit_isolates_each_write(store, db):
    store.add_flight(_rec(0))
    before = store.write_stats()
    release, blocker = _hold_writer(store)
    calls = [
        lambda: store.add_flight(_rec(1)),
        lambda: store.add_flight(replace(_rec(2), flight_id=flight_id(0, 0))),  # clash
        lambda: store.add_flights(
            [_rec(3), replace(_rec(4), flight_id=flight_id(0, 0))]
        ),
        lambda: store.cancel_flight("F-none", T0_S),
        lambda: store.put_zone(_zones()[1], "reg", T0_S),
        lambda: store.add_flight(_rec(5)),
    ]
    threads, out = _submit_all(calls)
    deadline = time.monotonic() + 10
    while store._queue.qsize() < len(calls) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert out == {}  # nobody is acknowledged before the commit
    release.set()
    for t in [blocker, *threads]:
        t.join()
    assert out[0] == (True, _rec(1)) and out[5] == (True, _rec(5))
    assert not out[1][0] and isinstance(out[1][1], StoreConflictError)
    # the batch's 2nd record clashes: the whole batch rolls back, not the group
    assert not out[2][0] and isinstance(out[2][1], StoreConflictError)
    assert not out[3][0] and isinstance(out[3][1], StoreNotFoundError)
    assert out[4] == (True, None)
    stats = store.write_stats()
    assert stats["writes"] - before["writes"] == 1 + len(calls)
    assert stats["commits"] - before["commits"] == 2  # the blocker, then one group
    with Store(db) as s2:  # what the group committed is what a reader sees
        assert {r.flight_id for r in s2.list_flights()} == {
            flight_id(0, i) for i in (0, 1, 5)
        }
        kinds = [e["kind"] for e in s2.events_since(0)]
        assert sorted(kinds) == ["flight_accepted"] * 3 + ["zone_put"]
        assert s2.get_zone("Z-circ") == _zones()[1]


def test_lost_transaction_acknowledges_nothing_of_its_group(store, db):
    out = _run_as_one_group(store, [
        lambda: store.add_flight(_rec(1)),
        lambda: store._write(lambda conn: conn.execute("ROLLBACK")),  # drops the tx
        lambda: store.add_flight(_rec(2)),
    ])
    for ok, err in out.values():
        assert not ok and type(err) is StoreWriteError
        assert "write transaction failed" in str(err)
    assert store.count_flights() == 0 and store.events_since(0) == []
    assert store.add_flight(_rec(3)) == _rec(3)  # the writer carries on


def test_a_failed_commit_is_uncertain_for_its_writes_only(store, db):
    """A group whose COMMIT fails (after the rows reached the file, as when fsync
    fails): the writes that ran get CommitUncertainError (they may be on disk: here
    they are), a write that failed on its own keeps its own error (it was rolled back
    to its savepoint either way); a failure before COMMIT is a StoreWriteError, which
    says nothing was written."""
    import sqlite3

    from skytwin.server.store import CommitUncertainError
    store.add_flight(_rec(0))
    real = store._commit_group

    class Conn:
        def __init__(self, c):
            self._c = c

        def execute(self, sql, *a):
            out = self._c.execute(sql, *a)
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return out

        def __getattr__(self, name):
            return getattr(self._c, name)

    # (only the group fails: the held writer's own write commits alone, before it)
    store._commit_group = lambda conn, group: real(Conn(conn) if len(group) > 1 else conn,
                                                   group)
    out = _run_as_one_group(store, [
        lambda: store.add_flight(_rec(1)),
        lambda: store.add_flight(replace(_rec(2), flight_id=flight_id(0, 0))),  # clash
        lambda: store.add_flight(_rec(3)),
    ])
    del store._commit_group
    assert isinstance(out[0][1], CommitUncertainError)
    assert isinstance(out[2][1], CommitUncertainError)
    assert isinstance(out[1][1], StoreConflictError)
    assert "retry" in str(out[0][1]) and "may or may not" in str(out[0][1])
    with Store(db) as s2:            # here the rows did land
        assert {r.flight_id for r in s2.list_flights()} == {
            flight_id(0, i) for i in (0, 1, 3)}


def test_close_finishes_queued_writes(db):
    s = Store(db)
    release, blocker = _hold_writer(s)
    threads, out = _submit_all([lambda i=i: s.add_flight(_rec(i)) for i in range(5)])
    deadline = time.monotonic() + 10
    while s._queue.qsize() < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    closer = threading.Thread(target=s.close)
    closer.start()
    release.set()
    for t in [blocker, *threads, closer]:
        t.join()
    assert all(ok for ok, _ in out.values())
    assert sorted(v.flight_id for _, v in out.values()) == [
        flight_id(0, i) for i in range(5)
    ]
    with Store(db) as s2:
        assert s2.count_flights() == 5
    with pytest.raises(StoreClosedError, match="is closed"):
        s.add_flight(_rec(9))


def test_close_and_pragmas(db):
    s = Store(db)
    conn = s._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    s.add_flight(_rec(0))  # the writer thread's connection has the same pragmas
    assert len(s._conns) == 2
    for c in s._conns:
        assert c.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreClosedError, match="is closed"):
        s.get_flight("F-1")
    t = threading.Thread(target=lambda: pytest.raises(StoreClosedError, s.list_zones))
    t.start()
    t.join()


# ------------------------------------------------------------------------ file checks
def test_schema_version_newer_is_refused(db):
    Store(db).close()
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(
        StoreVersionError,
        match=rf"schema version {SCHEMA_VERSION + 1} is newer than this "
        rf"SkyTwin supports \({SCHEMA_VERSION}\); upgrade SkyTwin",
    ):
        Store(db)


def test_foreign_files_are_refused(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    c.close()
    with pytest.raises(
        StoreVersionError,
        match=r"not a SkyTwin store \(application_id "
        r"0x0, 1 tables\)",
    ):
        Store(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreVersionError, match="junk.db"):
        Store(junk)
    with sqlite3.connect(tmp_path / "ok.db") as c:  # our application id, fresh
        pass
    c.close()
    Store(tmp_path / "ok.db").close()
    with sqlite3.connect(tmp_path / "ok.db") as c:
        assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    c.close()


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(StoreError, match=r"directory .*nowhere does not exist"):
        Store(tmp_path / "nowhere" / "sky.db")


def test_damaged_row_is_detected_not_returned(store, db):
    r = store.add_flight(_rec(0))
    store.add_flight(_rec(1))
    with sqlite3.connect(db) as c:  # flip one byte of one stored trajectory
        blob = bytearray(
            c.execute(
                "SELECT xyz_m FROM flights WHERE flight_id = ?", (r.flight_id,)
            ).fetchone()[0]
        )
        blob[5] ^= 0x40
        c.execute(
            "UPDATE flights SET xyz_m = ? WHERE flight_id = ?",
            (bytes(blob), r.flight_id),
        )
    c.close()
    with pytest.raises(
        StoreCorruptError,
        match=f"flight {r.flight_id}: stored row does not decode: CRC mismatch",
    ):
        store.get_flight(r.flight_id)
    problems = store.integrity_check()
    assert len(problems) == 1 and "CRC mismatch" in problems[0]


# -------------------------------------------------------------------------- SIGKILL
def _spawn(db, run, n_threads):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), str(run), "0", str(n_threads)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _ack(line, run, acked, cancels, zones):
    kind, a, *rest = line.split()
    if kind == "A":
        acked[rest[0]] = (run, int(a))
    elif kind == "C":
        cancels.setdefault(a, float(rest[0]))  # a second cancel is a no-op
    else:
        assert kind == "Z", line
        zones.add(a)


def test_sigkill_loses_no_acknowledged_write(db):
    rng = np.random.default_rng(20261122)
    acked, cancels, zones = {}, {}, set()
    for run, n_threads in ((1, 1), (2, 4), (3, 1), (4, 8)):
        kill_after = int(rng.integers(200, 450))
        proc = _spawn(db, run, n_threads)
        try:
            n_acks = 0
            while n_acks < kill_after:
                line = proc.stdout.readline()
                if not line:
                    pytest.fail(f"worker ended early: {proc.stderr.read()}")
                _ack(line, run, acked, cancels, zones)
                n_acks += 1
            time.sleep(float(rng.uniform(0.0, 0.02)))  # land anywhere in the next write
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            # acks still in the pipe were printed before the kill: they count
            for line in proc.stdout.read().splitlines():
                _ack(line, run, acked, cancels, zones)
        finally:
            if proc.poll() is None:  # pragma: no cover
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL

        with Store(db) as s:  # reopen after the kill (recovers the WAL)
            assert s.integrity_check() == []
            raw = sqlite3.connect(db)
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            raw.close()
            stored = {r.flight_id: r for r in s.list_flights(limit=1_000_000)}
            for fid, (r_run, i) in acked.items():
                assert fid in stored, f"acknowledged flight {fid} lost after SIGKILL"
            for fid, got in stored.items():  # acked or not, every row is whole
                r_run, i = int(fid[2:5]), int(fid[5:])
                want = make_record(r_run, i)
                if fid in cancels or got.status == "cancelled":
                    want = replace(
                        want, status="cancelled", cancelled_s=got.cancelled_s
                    )
                assert got == want, f"flight {fid} differs from what was written"
            for fid, now_s in cancels.items():
                assert stored[fid].status == "cancelled"
                assert stored[fid].cancelled_s == now_s
            stored_zones = {z.id: z for z in s.list_zones()}
            for zid in zones:
                _, zrun, k = zid.split("-")
                assert stored_zones[zid] == make_zone(int(zrun), int(k))
            # the change log agrees with the state, transaction by transaction
            ev = s.events_since(0, limit=1_000_000)
            accepted = [e["id"] for e in ev if e["kind"] == "flight_accepted"]
            assert sorted(accepted) == sorted(stored)
            cancelled = {e["id"] for e in ev if e["kind"] == "flight_cancelled"}
            assert cancelled == {
                f for f, r in stored.items() if r.status == "cancelled"
            }
            assert {e["id"] for e in ev if e["kind"] == "zone_put"} == set(stored_zones)
    assert len(acked) >= 800, len(acked)
    print(f"acked {len(acked)} flights, stored {len(stored)}; {len(cancels)} cancels")


def test_version_1_file_is_migrated_in_place(db):
    """A store written before request digests and cancel reasons (schema 1) opens:
    its rows read back with None there, and new rows keep both."""
    s = Store(db)
    old = s.add_flight(_rec(0))
    s.close()
    with sqlite3.connect(db) as c:            # turn it back into a version 1 file
        c.execute("ALTER TABLE flights DROP COLUMN request_digest")
        c.execute("ALTER TABLE flights DROP COLUMN cancel_reason")
        c.execute("ALTER TABLE events DROP COLUMN reason")
        c.execute("PRAGMA user_version = 1")
    c.close()
    s = Store(db)
    try:
        got = s.get_flight(old.flight_id)
        assert got == old and got.request_digest is None
        conn = s._conn()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        new = s.add_flight(_rec(1, request_digest="d" * 64))
        assert s.get_flight(new.flight_id).request_digest == "d" * 64
        gone = s.cancel_flight(old.flight_id, T0_S + 5, actor="reg", reason="storm")
        assert gone.cancel_reason == "storm"
        assert s.get_flight(old.flight_id).cancel_reason == "storm"
        assert s.events_since(0)[-1]["reason"] == "storm"
        assert s.integrity_check() == []
    finally:
        s.close()
