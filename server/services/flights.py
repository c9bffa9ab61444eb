"""FlightService: plan (preview), submit, batch, get, list, cancel.

Every field is checked against the server's limits before any work (server.convert,
server.limits); request ids are bound to their request by a digest of the message
(SHA-256 of its deterministic serialisation, without the request id itself).
"""

from __future__ import annotations

import hashlib

from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.limits import LimitError, check_id, check_range, check_text
from skytwin.server.service import RequestTooLargeError
from skytwin.server.services._base import Base
from skytwin.v1 import flights_pb2 as pb
from skytwin.v1 import flights_pb2_grpc as rpc

__all__ = ["FlightServicer", "request_digest", "route_digest"]


def request_digest(msg) -> str:
    """SHA-256 hex of a request message without its ``request_id`` (what a retry must
    repeat exactly)."""
    m = type(msg)()
    m.CopyFrom(msg)
    m.ClearField("request_id")
    return hashlib.sha256(m.SerializeToString(deterministic=True)).hexdigest()


def route_digest(route) -> str:
    """SHA-256 hex of a ``RouteRequest`` message (binds a held plan to its request)."""
    return hashlib.sha256(route.SerializeToString(deterministic=True)).hexdigest()


BOOKING_THREADS = 2
"""Threads of the pool that books held plans (SubmitFlight with a ``plan_id``).

Two: a booking is a few milliseconds of Python under one GIL, so more threads add no
CPU, only GIL contention; two still let one booking run while the other waits for its
durable commit. Measured in the 20-hub load test at concurrency 16, in alternation
(``benchmarks/RESULTS.md``, scale part 12): 2 threads 99.0-100.4 SubmitFlight OK/s and
8.2-8.4 ms of the server process's CPU per OK; 4 threads 92.2-94.5 OK/s and
8.7-9.0 ms; 8 and 16 threads were no better than 4. One thread was faster still
(103.7-108.4 OK/s, 4 pairs with the 1 ms switch interval) but is not used: a held plan
that expired is planned again on its booking thread, and with one thread that one
slow booking would hold up every other operator's."""


class FlightServicer(Base, rpc.FlightServiceServicer):
    """Planning calls (PlanRoute, SubmitFlight with a route only, SubmitBatch) run on
    the planning pool; a SubmitFlight that books a held plan (``plan_id``) runs on a
    pool of its own (:data:`BOOKING_THREADS`, its own admission gate), because it only
    places, checks and commits (a few milliseconds): queued behind previews, each of
    which holds a planning thread for a whole plan, it waited ten to a hundred times
    its own cost (issue 14's load test). A held plan that has expired is planned
    again on that thread (through the planning processes when there are some)."""

    def __init__(self, core, *args, **kwargs):
        from concurrent.futures import ThreadPoolExecutor

        from skytwin.server.services._base import Gate
        super().__init__(core, *args, **kwargs)
        lim = core.limits
        self.book_executor = ThreadPoolExecutor(max_workers=BOOKING_THREADS,
                                                thread_name_prefix="skytwin-book")
        self.book_gate = Gate("booking", BOOKING_THREADS + lim.max_waiting_plan,
                              threads=BOOKING_THREADS, max_wait_s=lim.max_queue_wait_s)
        on_close = getattr(core, "on_close", None)
        if on_close is not None:     # stop booking before the store closes
            on_close(lambda: self.book_executor.shutdown(wait=True, cancel_futures=True))

    def _request(self, msg, where="route"):
        return convert.route_request_from_proto(msg, self.core.clock(), self.core.ceiling_agl_m,
                                                self.core.limits, where)

    async def PlanRoute(self, request, context):
        caller = current_caller()
        req, meta = self._request(request.route)
        route = await self.run_in(context, self.core.limits.deadline_plan_s, self.core.plan,
                                  req, caller)
        out = pb.PlanRouteResponse(route=convert.route_to_proto(route))
        held = self.core.hold_plan(caller, route_digest(request.route), req, meta, route)
        if held is not None:     # operators: a handle for SubmitFlight (server.plans)
            out.plan_id = held.plan_id
            out.plan_expire_time.FromNanoseconds(int(held.expires_unix_s * 1e9))
        return out

    async def SubmitFlight(self, request, context):
        caller = current_caller()
        lim = self.core.limits
        check_id(lim, "request_id", request.request_id)
        check_id(lim, "plan_id", request.plan_id, required=False)
        req = meta = digest_route = None
        if request.HasField("route") or not request.plan_id:
            req, meta = self._request(request.route)
            digest_route = route_digest(request.route)
        info: dict = {}
        pool, gate = ((self.book_executor, self.book_gate) if request.plan_id
                      else (self.executor, self.plan_gate))
        rec, replayed = await self._call(
            pool, gate, lim.deadline_plan_s, context, self.core.submit_flight, caller,
            request.request_id, req, meta, self.deadline_s(context, lim.deadline_plan_s),
            request_digest(request), plan_id=request.plan_id or None,
            route_digest=digest_route, info=info)
        out = pb.SubmitFlightResponse(flight=convert.flight_to_proto(rec), replayed=replayed,
                                      replanned=bool(info.get("replanned")))
        if not replayed and info.get("exposure"):    # issue 13 (not stored with the flight)
            out.exposure.CopyFrom(convert.exposure_to_proto(info["exposure"]))
        return out

    async def SubmitBatch(self, request, context):
        caller = current_caller()
        lim = self.core.limits
        if len(request.routes) > lim.max_batch:
            raise RequestTooLargeError(f"batch of {len(request.routes)} routes is over the "
                                       f"limit of {lim.max_batch}; split it")
        check_id(lim, "request_id", request.request_id)
        if request.max_solve_s:
            check_range("max_solve_s", request.max_solve_s, 0.0, lim.max_solve_s, "s")
        pairs = [self._request(r, f"routes[{n}]") for n, r in enumerate(request.routes)]
        recs, replayed, status = await self.run_in(
            context, lim.deadline_batch_s, self.core.submit_batch, caller, request.request_id,
            [p[0] for p in pairs], [p[1] for p in pairs], request.max_solve_s or None,
            self.deadline_s(context, lim.deadline_batch_s), request_digest(request))
        return pb.SubmitBatchResponse(flights=[convert.flight_to_proto(r) for r in recs],
                                      replayed=replayed, solver_status=status)

    async def GetFlight(self, request, context):
        caller = current_caller()
        check_id(self.core.limits, "flight_id", request.flight_id)
        rec = await self.run_fast(self.core.get_flight, caller, request.flight_id)
        return pb.GetFlightResponse(flight=convert.flight_to_proto(rec))

    async def ListFlights(self, request, context):
        caller = current_caller()
        lim = self.core.limits
        check_id(lim, "operator_id", request.operator_id, required=False)
        check_id(lim, "page_token", request.page_token, required=False)
        if request.page_size < 0:
            raise LimitError(f"page_size must be within 0..{lim.max_page_size} (0 = 100), "
                             f"got {request.page_size}")
        recs, token = await self.run_fast(
            self.core.list_flights, caller, request.operator_id or None,
            convert.status_from_proto(request.status),
            convert.opt_time(request, "start_time"), convert.opt_time(request, "end_time"),
            request.page_size or 100, request.page_token or None)
        return pb.ListFlightsResponse(flights=[convert.flight_to_proto(r) for r in recs],
                                      next_page_token=token)

    async def CancelFlight(self, request, context):
        caller = current_caller()
        check_id(self.core.limits, "flight_id", request.flight_id)
        check_text(self.core.limits, "reason", request.reason)
        rec = await self.run_fast(self.core.cancel_flight, caller, request.flight_id,
                                  request.reason)
        return pb.CancelFlightResponse(flight=convert.flight_to_proto(rec))
