"""FlightService: plan (preview), submit, batch, get, list, cancel."""

from __future__ import annotations

from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.services._base import Base
from skytwin.v1 import flights_pb2 as pb
from skytwin.v1 import flights_pb2_grpc as rpc

__all__ = ["FlightServicer"]


class FlightServicer(Base, rpc.FlightServiceServicer):
    def _request(self, msg):
        return convert.route_request_from_proto(msg, self.core.clock(), self.core.ceiling_agl_m)

    async def PlanRoute(self, request, context):
        current_caller()
        req, _ = self._request(request.route)
        route = await self.run(self.core.plan, req)
        return pb.PlanRouteResponse(route=convert.route_to_proto(route))

    async def SubmitFlight(self, request, context):
        caller = current_caller()
        req, meta = self._request(request.route)
        rec, replayed = await self.run(self.core.submit_flight, caller, request.request_id,
                                       req, meta, self.deadline_s(context))
        return pb.SubmitFlightResponse(flight=convert.flight_to_proto(rec), replayed=replayed)

    async def SubmitBatch(self, request, context):
        caller = current_caller()
        if len(request.routes) > self.core.limits.max_batch:
            from skytwin.server.service import RequestTooLargeError
            raise RequestTooLargeError(f"batch of {len(request.routes)} routes is over the "
                                       f"limit of {self.core.limits.max_batch}; split it")
        pairs = [self._request(r) for r in request.routes]
        recs, replayed, status = await self.run(
            self.core.submit_batch, caller, request.request_id, [p[0] for p in pairs],
            [p[1] for p in pairs], request.max_solve_s or None, self.deadline_s(context))
        return pb.SubmitBatchResponse(flights=[convert.flight_to_proto(r) for r in recs],
                                      replayed=replayed, solver_status=status)

    async def GetFlight(self, request, context):
        caller = current_caller()
        rec = await self.run_fast(self.core.get_flight, caller, request.flight_id)
        return pb.GetFlightResponse(flight=convert.flight_to_proto(rec))

    async def ListFlights(self, request, context):
        caller = current_caller()
        recs, token = await self.run_fast(
            self.core.list_flights, caller, request.operator_id or None,
            convert.status_from_proto(request.status),
            convert.opt_time(request, "start_time"), convert.opt_time(request, "end_time"),
            request.page_size or 100, request.page_token or None)
        return pb.ListFlightsResponse(flights=[convert.flight_to_proto(r) for r in recs],
                                      next_page_token=token)

    async def CancelFlight(self, request, context):
        caller = current_caller()
        rec = await self.run_fast(self.core.cancel_flight, caller, request.flight_id)
        return pb.CancelFlightResponse(flight=convert.flight_to_proto(rec))
