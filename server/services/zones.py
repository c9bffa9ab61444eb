"""ZoneService: no-fly volumes (regulators write; every authenticated caller reads).

Fields are checked against the server's limits before any work (server.convert); the
band against the ground and the zone count by the core (ServiceCore.check_zone)."""

from __future__ import annotations

from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.limits import check_id, check_range
from skytwin.server.service import RequestTooLargeError
from skytwin.server.services._base import Base
from skytwin.v1 import zones_pb2 as pb
from skytwin.v1 import zones_pb2_grpc as rpc

__all__ = ["ZoneServicer"]


class ZoneServicer(Base, rpc.ZoneServiceServicer):
    def _zones_answer(self, zones):
        mx = self.core.limits.max_query_zones
        if len(zones) > mx:
            raise RequestTooLargeError(f"the answer holds {len(zones)} zones, more than "
                                       f"the limit of {mx}; narrow the query")
        return [convert.zone_to_proto(z) for z in zones]

    async def CreateZone(self, request, context):
        caller = current_caller()
        zone = convert.zone_from_proto(request.zone, self.core.limits)
        zone, affected = await self.run_fast(self.core.create_zone, caller, zone)
        return pb.CreateZoneResponse(zone=convert.zone_to_proto(zone),
                                     affected_flight_ids=affected)

    async def UpdateZone(self, request, context):
        caller = current_caller()
        zone = convert.zone_from_proto(request.zone, self.core.limits)
        zone, affected = await self.run_fast(self.core.update_zone, caller, zone)
        return pb.UpdateZoneResponse(zone=convert.zone_to_proto(zone),
                                     affected_flight_ids=affected)

    async def DeleteZone(self, request, context):
        caller = current_caller()
        check_id(self.core.limits, "zone_id", request.zone_id)
        zone = await self.run_fast(self.core.delete_zone, caller, request.zone_id)
        return pb.DeleteZoneResponse(zone=convert.zone_to_proto(zone))

    async def GetZone(self, request, context):
        current_caller()
        check_id(self.core.limits, "zone_id", request.zone_id)
        return pb.GetZoneResponse(zone=convert.zone_to_proto(self.core.get_zone(request.zone_id)))

    async def ListZones(self, request, context):
        current_caller()
        return pb.ListZonesResponse(zones=self._zones_answer(self.core.list_zones()))

    async def QueryZones(self, request, context):
        current_caller()
        lim = self.core.limits
        box = convert.box_from_proto(request.box, required=False)
        lo, hi = ((request.z_lo_amsl_m, request.z_hi_amsl_m) if request.has_band
                  else (None, None))
        if request.has_band:
            for name, v in (("z_lo_amsl_m", lo), ("z_hi_amsl_m", hi)):
                check_range(name, v, -lim.max_abs_altitude_m, lim.max_abs_altitude_m, "m")
        zones = await self.run_fast(self.core.query_zones, box, lo, hi,
                                    convert.opt_time(request, "start_time"),
                                    convert.opt_time(request, "end_time"))
        return pb.QueryZonesResponse(zones=self._zones_answer(zones))

    async def ImportEd269(self, request, context):
        caller = current_caller()
        zones, affected = await self.run_query(caller, self.core.import_ed269, caller,
                                               request.ed269_json, request.replace_existing)
        return pb.ImportEd269Response(zones=[convert.zone_to_proto(z) for z in zones],
                                      affected_flight_ids=affected)

    async def ExportEd269(self, request, context):
        caller = current_caller()
        text = await self.run_query(caller, self.core.export_ed269, request.country)
        return pb.ExportEd269Response(ed269_json=text)
