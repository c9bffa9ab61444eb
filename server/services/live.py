"""LiveService: telemetry in, lifecycle events and advisories out (issue 11).

Translation only: reports become arrays for :meth:`server.live.LiveHub.ingest`
(which validates, monitors and stores), answers and commands go to the hub, and the
hub's results become messages (``server/live_convert``-style helpers at the bottom).

StreamTelemetry (bidirectional, operators only): each request's reports are ingested
on the telemetry thread (off the event loop; one thread: the engine serialises anyway)
and answered by one response holding one ack per report, in order, plus every
lifecycle event and advisory of this operator's flights published since the last
response (events caused by these reports included: they are stored before the hub
returns, so an ack never precedes its durable transition). Between requests, pushed
events and advisories are sent as they come. A bad report gets its status, never an
error of the stream; a request over ``MAX_REPORTS`` reports gets ``OVER_LIMIT`` for the
excess. ReportBatch is the unary form.

Requests that arrived while the previous ingestion ran are ingested together, in one
call of the hub (up to ``MAX_REPORTS`` reports; a request carrying advisory answers
closes a group, so answers and reports keep their order): under load the fixed cost
of a call (the hand-over to the telemetry thread and back, the coordinate transform,
the kernels' dispatch) is paid once per group instead of once per request, and a
stream never waits for one round trip per 20-report message (measured: ingestion p99
at 5,000 reports/s, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from skytwin.live import lifecycle as lc
from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.service import NotFoundError, RequestTooLargeError, WrongRoleError
from skytwin.server.services._base import Base
from skytwin.v1 import live_pb2 as pb
from skytwin.v1 import live_pb2_grpc as rpc

__all__ = ["LiveServicer", "MAX_REPORTS"]

MAX_REPORTS = 5000
QUEUE_SIZE = 10_000

_STATE = {lc.ACCEPTED: pb.LIFECYCLE_STATE_ACCEPTED, lc.ACTIVATED: pb.LIFECYCLE_STATE_ACTIVATED,
          lc.NONCONFORMING: pb.LIFECYCLE_STATE_NONCONFORMING,
          lc.CONTINGENT: pb.LIFECYCLE_STATE_CONTINGENT, lc.ENDED: pb.LIFECYCLE_STATE_ENDED,
          lc.CANCELLED: pb.LIFECYCLE_STATE_CANCELLED}
_STATE_NAME = {v: k for k, v in _STATE.items()}
_ACTOR = {lc.OPERATOR: pb.ACTOR_OPERATOR, lc.SERVICE: pb.ACTOR_SERVICE,
          lc.REGULATOR: pb.ACTOR_REGULATOR}


def event_to_proto(seq, ev) -> pb.LifecycleEvent:
    return pb.LifecycleEvent(sequence=int(seq), flight_id=ev.flight_id,
                             from_state=_STATE[ev.from_state], to_state=_STATE[ev.to_state],
                             actor=_ACTOR[ev.actor], time=convert.timestamp(ev.t_s),
                             reason=ev.reason, detail=ev.detail)


def advisory_to_proto(adv, frame) -> pb.Advisory:
    tr = adv.trajectory
    lon, lat = frame.to_wgs84(tr.xyz_m[:, 0], tr.xyz_m[:, 1])
    msg = pb.Advisory(advisory_id=adv.advisory_id, flight_id=adv.flight_id,
                      reason=adv.reason, cause=list(adv.cause),
                      issued_time=convert.timestamp(adv.issued_s),
                      start_time=convert.timestamp(adv.start_s),
                      hold=convert.duration(adv.hold_s),
                      added_delay=convert.duration(max(0.0, adv.added_delay_s)))
    for k in range(len(tr.t_s)):
        w = msg.waypoints.add(alt_amsl_m=float(tr.xyz_m[k, 2]),
                              time=convert.timestamp(float(tr.t_s[k])))
        w.position.lon_deg = float(lon[k])
        w.position.lat_deg = float(lat[k])
    return msg


def _arrays(reports):
    n = len(reports)
    ids = [r.flight_id for r in reports]
    t = np.fromiter((r.time.seconds + 1e-9 * r.time.nanos for r in reports), np.float64, n)
    lon = np.fromiter((r.position.lon_deg for r in reports), np.float64, n)
    lat = np.fromiter((r.position.lat_deg for r in reports), np.float64, n)
    alt = np.fromiter((r.alt_amsl_m for r in reports), np.float64, n)
    vel = np.full((n, 3), np.nan)
    acc_h = np.full(n, np.nan)
    acc_v = np.full(n, np.nan)
    for k, r in enumerate(reports):
        if r.HasField("velocity_east_mps") or r.HasField("velocity_north_mps") or \
                r.HasField("velocity_up_mps"):
            vel[k] = (r.velocity_east_mps, r.velocity_north_mps, r.velocity_up_mps)
        if r.HasField("accuracy_h_m"):
            acc_h[k] = r.accuracy_h_m
        if r.HasField("accuracy_v_m"):
            acc_v[k] = r.accuracy_v_m
        if not r.HasField("time"):
            t[k] = np.nan
    return ids, t, lon, lat, alt, vel, acc_h, acc_v


class LiveServicer(Base, rpc.LiveServiceServicer):
    def __init__(self, core, hub, executor, fast_executor=None, **kw):
        super().__init__(core, executor, fast_executor, **kw)
        self.hub = hub
        self.telemetry = ThreadPoolExecutor(1, thread_name_prefix="telemetry")

    def _operator(self):
        caller = current_caller()
        if caller.is_regulator or not caller.operator_id:
            raise WrongRoleError("only operators send telemetry for their flights")
        return caller

    async def _ingest(self, operator_id, reports):
        (acks,), events = await self._ingest_many(operator_id, [reports])
        return acks, events

    async def _ingest_many(self, operator_id, parts):
        """Ingest the reports of several requests in one hub call; ``(acks per
        request, events)``."""
        keeps = [list(p[:MAX_REPORTS]) for p in parts]
        allr = [r for k in keeps for r in k]
        events = []
        status = ()
        if allr:
            loop = asyncio.get_running_loop()
            arrays = _arrays(allr)
            status, events = await loop.run_in_executor(
                self.telemetry, lambda: self.hub.ingest(operator_id, *arrays))
            status = (np.asarray(status, np.int64) + 1).tolist()
        out, at = [], 0
        for p, keep in zip(parts, keeps, strict=True):
            acks = [pb.ReportAck(report_id=r.report_id, flight_id=r.flight_id, status=s)
                    for r, s in zip(keep, status[at:at + len(keep)], strict=True)]
            at += len(keep)
            acks += [pb.ReportAck(report_id=r.report_id, flight_id=r.flight_id,
                                  status=pb.REPORT_STATUS_OVER_LIMIT)
                     for r in p[MAX_REPORTS:]]
            out.append(acks)
        return out, events

    async def StreamTelemetry(self, request_iterator, context):
        caller = self._operator()
        loop = asyncio.get_running_loop()
        out: asyncio.Queue = asyncio.Queue()     # ("push", kind, item) / ("resp", resp)
        frame = self.core.twin.frame
        overflow = []

        def offer(kind, item):
            if out.qsize() >= QUEUE_SIZE:
                overflow.append(1)
            else:
                out.put_nowait(("push", kind, item))

        def callback(kind, item):      # from hub threads, in commit order
            loop.call_soon_threadsafe(offer, kind, item)

        inbox: asyncio.Queue = asyncio.Queue()   # requests received, not yet ingested

        async def receive():
            try:
                async for req in request_iterator:
                    inbox.put_nowait(req)
            finally:
                inbox.put_nowait(None)

        async def flush(group):
            """Ingest a group of requests in one call; their responses, in order."""
            parts = [list(req.reports) for req, _ in group]
            acks, _events = await self._ingest_many(caller.operator_id, parts)
            for (_, resp), a in zip(group, acks, strict=True):
                resp.acks.extend(a)
                out.put_nowait(("resp", resp))

        async def consume():
            rx = asyncio.create_task(receive())
            try:
                ended = False
                while not ended:
                    reqs = [await inbox.get()]
                    n = len(reqs[0].reports) if reqs[0] is not None else 0
                    while reqs[-1] is not None and not inbox.empty() and n < MAX_REPORTS:
                        reqs.append(inbox.get_nowait())
                        n += len(reqs[-1].reports) if reqs[-1] is not None else 0
                    if reqs[-1] is None:
                        ended = True
                        reqs.pop()
                    group = []
                    for req in reqs:
                        resp = pb.TelemetryResponse()
                        if req.answers:      # answers keep their place among reports
                            if group:
                                await flush(group)
                                group = []
                            for a in req.answers:
                                resp.answer_acks.append(await self._answer(
                                    caller, a.advisory_id, a.accept))
                        group.append((req, resp))
                    if group:
                        await flush(group)
                if rx.done() and rx.exception() is not None:
                    raise rx.exception()
            finally:
                rx.cancel()
                out.put_nowait(("end",))

        self.hub.subscribe(caller.operator_id, callback)
        task = asyncio.create_task(consume())
        try:
            while True:
                items = [await out.get()]
                while not out.empty():
                    items.append(out.get_nowait())
                if overflow:
                    raise RequestTooLargeError(f"the client fell more than {QUEUE_SIZE} "
                                               "messages behind; reconnect")
                pending = pb.TelemetryResponse()
                done = False
                for it in items:
                    if it[0] == "push":
                        if it[1] == "event":
                            pending.events.append(event_to_proto(it[2].seq, it[2].event))
                        else:
                            pending.advisories.append(advisory_to_proto(it[2], frame))
                    elif it[0] == "resp":
                        it[1].events.extend(pending.events)
                        it[1].advisories.extend(pending.advisories)
                        pending = pb.TelemetryResponse()
                        yield it[1]
                    else:
                        done = True
                if pending.events or pending.advisories:
                    yield pending
                if done:
                    break
            if task.done() and task.exception() is not None:
                raise task.exception()
        finally:
            self.hub.unsubscribe(callback)
            task.cancel()

    async def _answer(self, caller, advisory_id, accept):
        try:
            await self.run_fast(self.hub.answer, caller.operator_id, advisory_id, accept)
            return pb.AdvisoryAnswerAck(advisory_id=advisory_id, ok=True)
        except (KeyError, PermissionError, ValueError) as exc:
            return pb.AdvisoryAnswerAck(advisory_id=advisory_id, ok=False,
                                        error=str(exc)[:300])

    async def ReportBatch(self, request, context):
        caller = self._operator()
        acks, events = await self._ingest(caller.operator_id, list(request.reports))
        return pb.ReportBatchResponse(acks=acks,
                                      events=[event_to_proto(s, e) for s, e in events])

    async def AnswerAdvisory(self, request, context):
        caller = self._operator()
        try:
            adv = await self.run_fast(self.hub.answer, caller.operator_id,
                                      request.advisory_id, request.accept)
        except KeyError:
            raise NotFoundError(f"advisory {request.advisory_id} not found") from None
        return pb.AnswerAdvisoryResponse(advisory=advisory_to_proto(adv, self.core.twin.frame))

    async def SetFlightState(self, request, context):
        caller = current_caller()
        to = _STATE_NAME.get(request.state)
        if to is None:
            raise ValueError("state must be one of ACTIVATED, CONTINGENT, ENDED, CANCELLED")
        try:
            seq, ev = await self.run_fast(
                self.hub.command, "regulator" if caller.is_regulator else "operator",
                caller.operator_id, request.flight_id, to, request.reason)
        except KeyError:
            raise NotFoundError(f"flight {request.flight_id} is not known to live "
                                "operations") from None
        return pb.SetFlightStateResponse(event=event_to_proto(seq, ev))

    async def GetFlightState(self, request, context):
        caller = current_caller()
        rec = await self.run_fast(self.core.get_flight, caller, request.flight_id)
        hist = await self.run_fast(self.core.store.lifecycle_events, rec.flight_id)
        state = self.hub.ops.state_of(rec.flight_id)
        if state is None:
            state = hist[-1][1].to_state if hist else \
                (lc.CANCELLED if rec.status == "cancelled" else lc.ACCEPTED)
        return pb.GetFlightStateResponse(flight_id=rec.flight_id, state=_STATE[state],
                                         events=[event_to_proto(s, e) for s, e in hist])

    async def GetLiveStatus(self, request, context):
        current_caller()
        c = self.hub.status()
        tick = sorted(self.hub.tick_ms)
        p99 = tick[int(0.99 * (len(tick) - 1))] if tick else 0.0
        return pb.GetLiveStatusResponse(
            flights_by_state={k: int(v) for k, v in c["flights"].items()},
            reports=c["reports"], reports_accepted=c["accepted"],
            conflicts_predicted=c["conflict_pairs"], advisories_issued=c["advisories"],
            advisories_accepted=c["advisories_accepted"],
            advisories_refused=c["advisories_refused"], unresolved=c["unresolved"],
            last_tick_ms=c["last_tick_ms"] or 0.0, tick_p99_ms=p99,
            track_rows_pending=c["track_rows_pending"],
            track_rows_dropped=c["track_rows_dropped"],
            zone_unresolved=c["zone_unresolved"])
