"""AirspaceService: twin information, grid codes, blocked codes."""

from __future__ import annotations

from skytwin.server import convert
from skytwin.server.auth import current_caller
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
        code = self.core.encode_grid_code(request.position.lon_deg, request.position.lat_deg,
                                          request.altitude.value_m, ref,
                                          request.resolution or None, request.layer_m or None)
        return pb.EncodeGridCodeResponse(code=convert.gridcode_to_proto(code))

    async def DecodeGridCode(self, request, context):
        current_caller()
        return pb.DecodeGridCodeResponse(
            code=convert.gridcode_to_proto(self.core.decode_grid_code(request.code)))

    async def QueryBlockedCodes(self, request, context):
        current_caller()
        box = convert.box_from_proto(request.box)
        res = await self.run_fast(self.core.blocked_codes, box, request.z_lo_amsl_m,
                             request.z_hi_amsl_m, convert.opt_time(request, "time"),
                             request.resolution or None, request.layer_m or None,
                             request.clearance_m)
        return convert.blocked_to_proto(res)
