"""AirspaceService: twin information, grid codes, blocked codes, ground risk.

QueryGroundRisk (issue 13) answers from the server's risk layer (:mod:`server.ground`):
the cells meeting a WGS84 box or a grid code's H3 cell, with people per km² by day and
night, SORA bands and iGRC; every authenticated caller may read it (operators plan
with it), and at most ``max_query_cells`` cells are examined (more:
RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

from skytwin.server import convert
from skytwin.server.auth import current_caller
from skytwin.server.limits import LimitError, check_range, echo
from skytwin.server.services._base import Base
from skytwin.v1 import airspace_pb2 as pb
from skytwin.v1 import airspace_pb2_grpc as rpc

__all__ = ["AirspaceServicer"]


class AirspaceServicer(Base, rpc.AirspaceServiceServicer):
    async def GetTwinInfo(self, request, context):
        current_caller()
        return convert.info_to_proto(self.core.info())

    async def EncodeGridCode(self, request, context):
        current_caller()
        if not request.HasField("position") or not request.HasField("altitude"):
            raise ValueError("position and altitude are required")
        ref = convert.reference_from_proto(request.altitude.reference, "altitude")
        lim = self.core.limits
        check_range("position.lon_deg", request.position.lon_deg, -180, 180, "deg")
        check_range("position.lat_deg", request.position.lat_deg, -90, 90, "deg")
        check_range("altitude.value_m", request.altitude.value_m, -lim.max_abs_altitude_m,
                    lim.max_abs_altitude_m, "m")
        check_range("resolution", request.resolution, 0, 15)
        check_range("layer_m", request.layer_m, 0.0, 1000.0, "m")
        code = self.core.encode_grid_code(request.position.lon_deg, request.position.lat_deg,
                                          request.altitude.value_m, ref,
                                          request.resolution or None, request.layer_m or None)
        return pb.EncodeGridCodeResponse(code=convert.gridcode_to_proto(code))

    async def DecodeGridCode(self, request, context):
        current_caller()
        mx = self.core.limits.max_grid_code_chars
        if len(request.code) > mx:
            raise LimitError(f"code: {len(request.code)} characters, over the limit of "
                             f"{mx} (starts {echo(request.code, self.core.limits.echo_chars)})")
        return pb.DecodeGridCodeResponse(
            code=convert.gridcode_to_proto(self.core.decode_grid_code(request.code)))

    async def QueryBlockedCodes(self, request, context):
        caller = current_caller()
        box = convert.box_from_proto(request.box)
        check_range("clearance_m", request.clearance_m, 0.0,
                    self.core.limits.max_query_clearance_m, "m")
        self.core.check_query_area(box, request.resolution or None)
        res = await self.run_query(caller, self.core.blocked_codes, box,
                                   request.z_lo_amsl_m, request.z_hi_amsl_m,
                                   convert.opt_time(request, "time"),
                                   request.resolution or None, request.layer_m or None,
                                   request.clearance_m)
        return convert.blocked_to_proto(res)

    async def QueryGroundRisk(self, request, context):
        caller = current_caller()
        lim = self.core.limits
        box, code = self._area(request)
        if box is None and code is None:
            raise ValueError("give box or grid_code")
        res = await self.run_query(caller, self.core.ground.risk_cells, box, code,
                                   request.include_empty, lim.max_query_cells)
        return convert_risk(res)


def convert_risk(res: dict) -> pb.QueryGroundRiskResponse:
    """:meth:`server.ground.GroundLayers.risk_cells` -> QueryGroundRiskResponse."""
    return pb.QueryGroundRiskResponse(
        cells=[pb.RiskCell(
            corners=[pb.LonLat(lon_deg=lo, lat_deg=la) for lo, la in c["corners"]],
            density_day_ppl_km2=c["density_day"], density_night_ppl_km2=c["density_night"],
            band_day=c["band_day"], band_night=c["band_night"],
            igrc_day=c["igrc_day"] or 0, igrc_night=c["igrc_night"] or 0, i=c["i"],
            j=c["j"]) for c in res["cells"]],
        cell_m=res["cell_m"], source=res["source"], worst_band_day=res["worst_band_day"],
        worst_band_night=res["worst_band_night"],
        max_density_day_ppl_km2=res["max_density_day"],
        max_density_night_ppl_km2=res["max_density_night"],
        drone_class=res["drone_class"], band_limits_ppl_km2=res["band_limits"])
