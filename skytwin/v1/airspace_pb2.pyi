import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AltitudeReference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALTITUDE_REFERENCE_UNSPECIFIED: _ClassVar[AltitudeReference]
    ALTITUDE_REFERENCE_AGL: _ClassVar[AltitudeReference]
    ALTITUDE_REFERENCE_AMSL: _ClassVar[AltitudeReference]
ALTITUDE_REFERENCE_UNSPECIFIED: AltitudeReference
ALTITUDE_REFERENCE_AGL: AltitudeReference
ALTITUDE_REFERENCE_AMSL: AltitudeReference

class Altitude(_message.Message):
    __slots__ = ("value_m", "reference")
    VALUE_M_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    value_m: float
    reference: AltitudeReference
    def __init__(self, value_m: _Optional[float] = ..., reference: _Optional[_Union[AltitudeReference, str]] = ...) -> None: ...

class LonLat(_message.Message):
    __slots__ = ("lon_deg", "lat_deg")
    LON_DEG_FIELD_NUMBER: _ClassVar[int]
    LAT_DEG_FIELD_NUMBER: _ClassVar[int]
    lon_deg: float
    lat_deg: float
    def __init__(self, lon_deg: _Optional[float] = ..., lat_deg: _Optional[float] = ...) -> None: ...

class LonLatBox(_message.Message):
    __slots__ = ("min_lon_deg", "min_lat_deg", "max_lon_deg", "max_lat_deg")
    MIN_LON_DEG_FIELD_NUMBER: _ClassVar[int]
    MIN_LAT_DEG_FIELD_NUMBER: _ClassVar[int]
    MAX_LON_DEG_FIELD_NUMBER: _ClassVar[int]
    MAX_LAT_DEG_FIELD_NUMBER: _ClassVar[int]
    min_lon_deg: float
    min_lat_deg: float
    max_lon_deg: float
    max_lat_deg: float
    def __init__(self, min_lon_deg: _Optional[float] = ..., min_lat_deg: _Optional[float] = ..., max_lon_deg: _Optional[float] = ..., max_lat_deg: _Optional[float] = ...) -> None: ...

class GetTwinInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTwinInfoResponse(_message.Message):
    __slots__ = ("bounds", "resolution_m", "layer_m", "clearance_m", "ceiling_agl_m", "layer_count", "column_count_x", "column_count_y", "floor_amsl_m", "building_count", "skipped_count", "blocked_fraction", "source", "zone_count", "accepted_flight_count")
    BOUNDS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_M_FIELD_NUMBER: _ClassVar[int]
    LAYER_M_FIELD_NUMBER: _ClassVar[int]
    CLEARANCE_M_FIELD_NUMBER: _ClassVar[int]
    CEILING_AGL_M_FIELD_NUMBER: _ClassVar[int]
    LAYER_COUNT_FIELD_NUMBER: _ClassVar[int]
    COLUMN_COUNT_X_FIELD_NUMBER: _ClassVar[int]
    COLUMN_COUNT_Y_FIELD_NUMBER: _ClassVar[int]
    FLOOR_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    BUILDING_COUNT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_COUNT_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ZONE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FLIGHT_COUNT_FIELD_NUMBER: _ClassVar[int]
    bounds: LonLatBox
    resolution_m: float
    layer_m: float
    clearance_m: float
    ceiling_agl_m: float
    layer_count: int
    column_count_x: int
    column_count_y: int
    floor_amsl_m: float
    building_count: int
    skipped_count: int
    blocked_fraction: float
    source: str
    zone_count: int
    accepted_flight_count: int
    def __init__(self, bounds: _Optional[_Union[LonLatBox, _Mapping]] = ..., resolution_m: _Optional[float] = ..., layer_m: _Optional[float] = ..., clearance_m: _Optional[float] = ..., ceiling_agl_m: _Optional[float] = ..., layer_count: _Optional[int] = ..., column_count_x: _Optional[int] = ..., column_count_y: _Optional[int] = ..., floor_amsl_m: _Optional[float] = ..., building_count: _Optional[int] = ..., skipped_count: _Optional[int] = ..., blocked_fraction: _Optional[float] = ..., source: _Optional[str] = ..., zone_count: _Optional[int] = ..., accepted_flight_count: _Optional[int] = ...) -> None: ...

class EncodeGridCodeRequest(_message.Message):
    __slots__ = ("position", "altitude", "resolution", "layer_m")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ALTITUDE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    LAYER_M_FIELD_NUMBER: _ClassVar[int]
    position: LonLat
    altitude: Altitude
    resolution: int
    layer_m: float
    def __init__(self, position: _Optional[_Union[LonLat, _Mapping]] = ..., altitude: _Optional[_Union[Altitude, _Mapping]] = ..., resolution: _Optional[int] = ..., layer_m: _Optional[float] = ...) -> None: ...

class GridCodeInfo(_message.Message):
    __slots__ = ("code", "h3_cell", "layer", "layer_m", "reference", "resolution", "centre", "z_lo_m", "z_hi_m", "boundary")
    CODE_FIELD_NUMBER: _ClassVar[int]
    H3_CELL_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    LAYER_M_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    CENTRE_FIELD_NUMBER: _ClassVar[int]
    Z_LO_M_FIELD_NUMBER: _ClassVar[int]
    Z_HI_M_FIELD_NUMBER: _ClassVar[int]
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    code: str
    h3_cell: int
    layer: int
    layer_m: float
    reference: AltitudeReference
    resolution: int
    centre: LonLat
    z_lo_m: float
    z_hi_m: float
    boundary: _containers.RepeatedCompositeFieldContainer[LonLat]
    def __init__(self, code: _Optional[str] = ..., h3_cell: _Optional[int] = ..., layer: _Optional[int] = ..., layer_m: _Optional[float] = ..., reference: _Optional[_Union[AltitudeReference, str]] = ..., resolution: _Optional[int] = ..., centre: _Optional[_Union[LonLat, _Mapping]] = ..., z_lo_m: _Optional[float] = ..., z_hi_m: _Optional[float] = ..., boundary: _Optional[_Iterable[_Union[LonLat, _Mapping]]] = ...) -> None: ...

class EncodeGridCodeResponse(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: GridCodeInfo
    def __init__(self, code: _Optional[_Union[GridCodeInfo, _Mapping]] = ...) -> None: ...

class DecodeGridCodeRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class DecodeGridCodeResponse(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: GridCodeInfo
    def __init__(self, code: _Optional[_Union[GridCodeInfo, _Mapping]] = ...) -> None: ...

class Blocker(_message.Message):
    __slots__ = ("kind", "id")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Blocker.Kind]
        KIND_BUILDING: _ClassVar[Blocker.Kind]
        KIND_ZONE: _ClassVar[Blocker.Kind]
    KIND_UNSPECIFIED: Blocker.Kind
    KIND_BUILDING: Blocker.Kind
    KIND_ZONE: Blocker.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    kind: Blocker.Kind
    id: str
    def __init__(self, kind: _Optional[_Union[Blocker.Kind, str]] = ..., id: _Optional[str] = ...) -> None: ...

class BlockedCode(_message.Message):
    __slots__ = ("code", "blockers")
    CODE_FIELD_NUMBER: _ClassVar[int]
    BLOCKERS_FIELD_NUMBER: _ClassVar[int]
    code: str
    blockers: _containers.RepeatedCompositeFieldContainer[Blocker]
    def __init__(self, code: _Optional[str] = ..., blockers: _Optional[_Iterable[_Union[Blocker, _Mapping]]] = ...) -> None: ...

class QueryBlockedCodesRequest(_message.Message):
    __slots__ = ("box", "z_lo_amsl_m", "z_hi_amsl_m", "time", "resolution", "layer_m", "clearance_m")
    BOX_FIELD_NUMBER: _ClassVar[int]
    Z_LO_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    Z_HI_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    LAYER_M_FIELD_NUMBER: _ClassVar[int]
    CLEARANCE_M_FIELD_NUMBER: _ClassVar[int]
    box: LonLatBox
    z_lo_amsl_m: float
    z_hi_amsl_m: float
    time: _timestamp_pb2.Timestamp
    resolution: int
    layer_m: float
    clearance_m: float
    def __init__(self, box: _Optional[_Union[LonLatBox, _Mapping]] = ..., z_lo_amsl_m: _Optional[float] = ..., z_hi_amsl_m: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolution: _Optional[int] = ..., layer_m: _Optional[float] = ..., clearance_m: _Optional[float] = ...) -> None: ...

class QueryBlockedCodesResponse(_message.Message):
    __slots__ = ("codes",)
    CODES_FIELD_NUMBER: _ClassVar[int]
    codes: _containers.RepeatedCompositeFieldContainer[BlockedCode]
    def __init__(self, codes: _Optional[_Iterable[_Union[BlockedCode, _Mapping]]] = ...) -> None: ...
