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

class Limits(_message.Message):
    __slots__ = ("max_flight_duration_s", "min_cruise_speed_mps", "max_cruise_speed_mps", "min_vertical_speed_mps", "max_vertical_speed_mps", "max_departure_ahead_s", "past_departure_s", "max_delay_s", "max_priority", "max_id_chars", "max_text_chars", "max_grid_code_chars", "echo_chars", "max_polygon_vertices", "max_radius_m", "max_abs_altitude_m", "max_zones", "max_ed269_bytes", "max_json_depth", "max_batch", "max_page_size", "max_query_clearance_m", "max_query_cells", "max_blocked_codes", "max_query_zones", "max_solve_s", "deadline_fast_s", "deadline_plan_s", "deadline_batch_s", "max_waiting_plan", "max_waiting_fast", "max_waiting_query", "max_watchers", "keep_workspace_voxels", "large_search_slots", "rss_cap_mb", "max_queue_wait_s", "plan_hold_s", "max_held_plans", "max_held_plans_per_operator")
    MAX_FLIGHT_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    MIN_CRUISE_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    MAX_CRUISE_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    MIN_VERTICAL_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    MAX_VERTICAL_SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPARTURE_AHEAD_S_FIELD_NUMBER: _ClassVar[int]
    PAST_DEPARTURE_S_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_S_FIELD_NUMBER: _ClassVar[int]
    MAX_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MAX_ID_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_GRID_CODE_CHARS_FIELD_NUMBER: _ClassVar[int]
    ECHO_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_POLYGON_VERTICES_FIELD_NUMBER: _ClassVar[int]
    MAX_RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    MAX_ABS_ALTITUDE_M_FIELD_NUMBER: _ClassVar[int]
    MAX_ZONES_FIELD_NUMBER: _ClassVar[int]
    MAX_ED269_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_JSON_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUERY_CLEARANCE_M_FIELD_NUMBER: _ClassVar[int]
    MAX_QUERY_CELLS_FIELD_NUMBER: _ClassVar[int]
    MAX_BLOCKED_CODES_FIELD_NUMBER: _ClassVar[int]
    MAX_QUERY_ZONES_FIELD_NUMBER: _ClassVar[int]
    MAX_SOLVE_S_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FAST_S_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_PLAN_S_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_BATCH_S_FIELD_NUMBER: _ClassVar[int]
    MAX_WAITING_PLAN_FIELD_NUMBER: _ClassVar[int]
    MAX_WAITING_FAST_FIELD_NUMBER: _ClassVar[int]
    MAX_WAITING_QUERY_FIELD_NUMBER: _ClassVar[int]
    MAX_WATCHERS_FIELD_NUMBER: _ClassVar[int]
    KEEP_WORKSPACE_VOXELS_FIELD_NUMBER: _ClassVar[int]
    LARGE_SEARCH_SLOTS_FIELD_NUMBER: _ClassVar[int]
    RSS_CAP_MB_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    PLAN_HOLD_S_FIELD_NUMBER: _ClassVar[int]
    MAX_HELD_PLANS_FIELD_NUMBER: _ClassVar[int]
    MAX_HELD_PLANS_PER_OPERATOR_FIELD_NUMBER: _ClassVar[int]
    max_flight_duration_s: float
    min_cruise_speed_mps: float
    max_cruise_speed_mps: float
    min_vertical_speed_mps: float
    max_vertical_speed_mps: float
    max_departure_ahead_s: float
    past_departure_s: float
    max_delay_s: float
    max_priority: float
    max_id_chars: int
    max_text_chars: int
    max_grid_code_chars: int
    echo_chars: int
    max_polygon_vertices: int
    max_radius_m: float
    max_abs_altitude_m: float
    max_zones: int
    max_ed269_bytes: int
    max_json_depth: int
    max_batch: int
    max_page_size: int
    max_query_clearance_m: float
    max_query_cells: int
    max_blocked_codes: int
    max_query_zones: int
    max_solve_s: float
    deadline_fast_s: float
    deadline_plan_s: float
    deadline_batch_s: float
    max_waiting_plan: int
    max_waiting_fast: int
    max_waiting_query: int
    max_watchers: int
    keep_workspace_voxels: int
    large_search_slots: int
    rss_cap_mb: float
    max_queue_wait_s: float
    plan_hold_s: float
    max_held_plans: int
    max_held_plans_per_operator: int
    def __init__(self, max_flight_duration_s: _Optional[float] = ..., min_cruise_speed_mps: _Optional[float] = ..., max_cruise_speed_mps: _Optional[float] = ..., min_vertical_speed_mps: _Optional[float] = ..., max_vertical_speed_mps: _Optional[float] = ..., max_departure_ahead_s: _Optional[float] = ..., past_departure_s: _Optional[float] = ..., max_delay_s: _Optional[float] = ..., max_priority: _Optional[float] = ..., max_id_chars: _Optional[int] = ..., max_text_chars: _Optional[int] = ..., max_grid_code_chars: _Optional[int] = ..., echo_chars: _Optional[int] = ..., max_polygon_vertices: _Optional[int] = ..., max_radius_m: _Optional[float] = ..., max_abs_altitude_m: _Optional[float] = ..., max_zones: _Optional[int] = ..., max_ed269_bytes: _Optional[int] = ..., max_json_depth: _Optional[int] = ..., max_batch: _Optional[int] = ..., max_page_size: _Optional[int] = ..., max_query_clearance_m: _Optional[float] = ..., max_query_cells: _Optional[int] = ..., max_blocked_codes: _Optional[int] = ..., max_query_zones: _Optional[int] = ..., max_solve_s: _Optional[float] = ..., deadline_fast_s: _Optional[float] = ..., deadline_plan_s: _Optional[float] = ..., deadline_batch_s: _Optional[float] = ..., max_waiting_plan: _Optional[int] = ..., max_waiting_fast: _Optional[int] = ..., max_waiting_query: _Optional[int] = ..., max_watchers: _Optional[int] = ..., keep_workspace_voxels: _Optional[int] = ..., large_search_slots: _Optional[int] = ..., rss_cap_mb: _Optional[float] = ..., max_queue_wait_s: _Optional[float] = ..., plan_hold_s: _Optional[float] = ..., max_held_plans: _Optional[int] = ..., max_held_plans_per_operator: _Optional[int] = ...) -> None: ...

class GetTwinInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTwinInfoResponse(_message.Message):
    __slots__ = ("bounds", "resolution_m", "layer_m", "clearance_m", "ceiling_agl_m", "layer_count", "column_count_x", "column_count_y", "floor_amsl_m", "building_count", "skipped_count", "blocked_fraction", "source", "zone_count", "accepted_flight_count", "limits", "audit")
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
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
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
    limits: Limits
    audit: _containers.RepeatedCompositeFieldContainer[SourceAudit]
    def __init__(self, bounds: _Optional[_Union[LonLatBox, _Mapping]] = ..., resolution_m: _Optional[float] = ..., layer_m: _Optional[float] = ..., clearance_m: _Optional[float] = ..., ceiling_agl_m: _Optional[float] = ..., layer_count: _Optional[int] = ..., column_count_x: _Optional[int] = ..., column_count_y: _Optional[int] = ..., floor_amsl_m: _Optional[float] = ..., building_count: _Optional[int] = ..., skipped_count: _Optional[int] = ..., blocked_fraction: _Optional[float] = ..., source: _Optional[str] = ..., zone_count: _Optional[int] = ..., accepted_flight_count: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., audit: _Optional[_Iterable[_Union[SourceAudit, _Mapping]]] = ...) -> None: ...

class SourceAudit(_message.Message):
    __slots__ = ("file", "format", "crs", "objects_seen", "obstacles", "repaired", "hulled", "heights", "height_fields", "unknown_heights", "unknown_height_policy", "repairs", "skipped", "skipped_reasons", "notes")
    class ObjectsSeenEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class HeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class HeightFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RepairsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SkippedReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FILE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CRS_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_SEEN_FIELD_NUMBER: _ClassVar[int]
    OBSTACLES_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    HULLED_FIELD_NUMBER: _ClassVar[int]
    HEIGHTS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_HEIGHTS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_HEIGHT_POLICY_FIELD_NUMBER: _ClassVar[int]
    REPAIRS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_REASONS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    file: str
    format: str
    crs: str
    objects_seen: _containers.ScalarMap[str, int]
    obstacles: int
    repaired: int
    hulled: int
    heights: _containers.ScalarMap[str, int]
    height_fields: _containers.ScalarMap[str, int]
    unknown_heights: int
    unknown_height_policy: str
    repairs: _containers.ScalarMap[str, int]
    skipped: int
    skipped_reasons: _containers.ScalarMap[str, int]
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, file: _Optional[str] = ..., format: _Optional[str] = ..., crs: _Optional[str] = ..., objects_seen: _Optional[_Mapping[str, int]] = ..., obstacles: _Optional[int] = ..., repaired: _Optional[int] = ..., hulled: _Optional[int] = ..., heights: _Optional[_Mapping[str, int]] = ..., height_fields: _Optional[_Mapping[str, int]] = ..., unknown_heights: _Optional[int] = ..., unknown_height_policy: _Optional[str] = ..., repairs: _Optional[_Mapping[str, int]] = ..., skipped: _Optional[int] = ..., skipped_reasons: _Optional[_Mapping[str, int]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

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

class RiskCell(_message.Message):
    __slots__ = ("corners", "density_day_ppl_km2", "density_night_ppl_km2", "band_day", "band_night", "igrc_day", "igrc_night", "i", "j")
    CORNERS_FIELD_NUMBER: _ClassVar[int]
    DENSITY_DAY_PPL_KM2_FIELD_NUMBER: _ClassVar[int]
    DENSITY_NIGHT_PPL_KM2_FIELD_NUMBER: _ClassVar[int]
    BAND_DAY_FIELD_NUMBER: _ClassVar[int]
    BAND_NIGHT_FIELD_NUMBER: _ClassVar[int]
    IGRC_DAY_FIELD_NUMBER: _ClassVar[int]
    IGRC_NIGHT_FIELD_NUMBER: _ClassVar[int]
    I_FIELD_NUMBER: _ClassVar[int]
    J_FIELD_NUMBER: _ClassVar[int]
    corners: _containers.RepeatedCompositeFieldContainer[LonLat]
    density_day_ppl_km2: float
    density_night_ppl_km2: float
    band_day: int
    band_night: int
    igrc_day: int
    igrc_night: int
    i: int
    j: int
    def __init__(self, corners: _Optional[_Iterable[_Union[LonLat, _Mapping]]] = ..., density_day_ppl_km2: _Optional[float] = ..., density_night_ppl_km2: _Optional[float] = ..., band_day: _Optional[int] = ..., band_night: _Optional[int] = ..., igrc_day: _Optional[int] = ..., igrc_night: _Optional[int] = ..., i: _Optional[int] = ..., j: _Optional[int] = ...) -> None: ...

class QueryGroundRiskRequest(_message.Message):
    __slots__ = ("box", "grid_code", "include_empty")
    BOX_FIELD_NUMBER: _ClassVar[int]
    GRID_CODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EMPTY_FIELD_NUMBER: _ClassVar[int]
    box: LonLatBox
    grid_code: str
    include_empty: bool
    def __init__(self, box: _Optional[_Union[LonLatBox, _Mapping]] = ..., grid_code: _Optional[str] = ..., include_empty: _Optional[bool] = ...) -> None: ...

class QueryGroundRiskResponse(_message.Message):
    __slots__ = ("cells", "cell_m", "source", "worst_band_day", "worst_band_night", "max_density_day_ppl_km2", "max_density_night_ppl_km2", "drone_class", "band_limits_ppl_km2")
    CELLS_FIELD_NUMBER: _ClassVar[int]
    CELL_M_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WORST_BAND_DAY_FIELD_NUMBER: _ClassVar[int]
    WORST_BAND_NIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_DENSITY_DAY_PPL_KM2_FIELD_NUMBER: _ClassVar[int]
    MAX_DENSITY_NIGHT_PPL_KM2_FIELD_NUMBER: _ClassVar[int]
    DRONE_CLASS_FIELD_NUMBER: _ClassVar[int]
    BAND_LIMITS_PPL_KM2_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[RiskCell]
    cell_m: float
    source: str
    worst_band_day: int
    worst_band_night: int
    max_density_day_ppl_km2: float
    max_density_night_ppl_km2: float
    drone_class: str
    band_limits_ppl_km2: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, cells: _Optional[_Iterable[_Union[RiskCell, _Mapping]]] = ..., cell_m: _Optional[float] = ..., source: _Optional[str] = ..., worst_band_day: _Optional[int] = ..., worst_band_night: _Optional[int] = ..., max_density_day_ppl_km2: _Optional[float] = ..., max_density_night_ppl_km2: _Optional[float] = ..., drone_class: _Optional[str] = ..., band_limits_ppl_km2: _Optional[_Iterable[float]] = ...) -> None: ...
