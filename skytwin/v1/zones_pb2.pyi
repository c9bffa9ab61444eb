import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from skytwin.v1 import airspace_pb2 as _airspace_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Circle(_message.Message):
    __slots__ = ("centre", "radius_m")
    CENTRE_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    centre: _airspace_pb2.LonLat
    radius_m: float
    def __init__(self, centre: _Optional[_Union[_airspace_pb2.LonLat, _Mapping]] = ..., radius_m: _Optional[float] = ...) -> None: ...

class Polygon(_message.Message):
    __slots__ = ("vertices",)
    VERTICES_FIELD_NUMBER: _ClassVar[int]
    vertices: _containers.RepeatedCompositeFieldContainer[_airspace_pb2.LonLat]
    def __init__(self, vertices: _Optional[_Iterable[_Union[_airspace_pb2.LonLat, _Mapping]]] = ...) -> None: ...

class Zone(_message.Message):
    __slots__ = ("id", "name", "lower", "upper", "polygon", "circle", "active_from", "active_until", "reason", "authority_name", "authority_contact", "derived")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    CIRCLE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_NAME_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_CONTACT_FIELD_NUMBER: _ClassVar[int]
    DERIVED_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    lower: _airspace_pb2.Altitude
    upper: _airspace_pb2.Altitude
    polygon: Polygon
    circle: Circle
    active_from: _timestamp_pb2.Timestamp
    active_until: _timestamp_pb2.Timestamp
    reason: str
    authority_name: str
    authority_contact: str
    derived: DerivedInfo
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., lower: _Optional[_Union[_airspace_pb2.Altitude, _Mapping]] = ..., upper: _Optional[_Union[_airspace_pb2.Altitude, _Mapping]] = ..., polygon: _Optional[_Union[Polygon, _Mapping]] = ..., circle: _Optional[_Union[Circle, _Mapping]] = ..., active_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., authority_name: _Optional[str] = ..., authority_contact: _Optional[str] = ..., derived: _Optional[_Union[DerivedInfo, _Mapping]] = ...) -> None: ...

class DerivedInfo(_message.Message):
    __slots__ = ("category", "rule", "source_id", "matched", "members", "buffer_m", "sources", "also_matched", "enabled", "rule_category", "overridden", "override_by", "override_time", "override_reason")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    BUFFER_M_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ALSO_MATCHED_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    RULE_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_BY_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    category: str
    rule: str
    source_id: str
    matched: str
    members: _containers.RepeatedScalarFieldContainer[str]
    buffer_m: float
    sources: _containers.RepeatedScalarFieldContainer[str]
    also_matched: _containers.RepeatedScalarFieldContainer[str]
    enabled: bool
    rule_category: str
    overridden: bool
    override_by: str
    override_time: _timestamp_pb2.Timestamp
    override_reason: str
    def __init__(self, category: _Optional[str] = ..., rule: _Optional[str] = ..., source_id: _Optional[str] = ..., matched: _Optional[str] = ..., members: _Optional[_Iterable[str]] = ..., buffer_m: _Optional[float] = ..., sources: _Optional[_Iterable[str]] = ..., also_matched: _Optional[_Iterable[str]] = ..., enabled: _Optional[bool] = ..., rule_category: _Optional[str] = ..., overridden: _Optional[bool] = ..., override_by: _Optional[str] = ..., override_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., override_reason: _Optional[str] = ...) -> None: ...

class CreateZoneRequest(_message.Message):
    __slots__ = ("zone",)
    ZONE_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ...) -> None: ...

class CreateZoneResponse(_message.Message):
    __slots__ = ("zone", "affected_flight_ids")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FLIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    affected_flight_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ..., affected_flight_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateZoneRequest(_message.Message):
    __slots__ = ("zone",)
    ZONE_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ...) -> None: ...

class UpdateZoneResponse(_message.Message):
    __slots__ = ("zone", "affected_flight_ids")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FLIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    affected_flight_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ..., affected_flight_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteZoneRequest(_message.Message):
    __slots__ = ("zone_id",)
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    zone_id: str
    def __init__(self, zone_id: _Optional[str] = ...) -> None: ...

class DeleteZoneResponse(_message.Message):
    __slots__ = ("zone",)
    ZONE_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ...) -> None: ...

class GetZoneRequest(_message.Message):
    __slots__ = ("zone_id",)
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    zone_id: str
    def __init__(self, zone_id: _Optional[str] = ...) -> None: ...

class GetZoneResponse(_message.Message):
    __slots__ = ("zone",)
    ZONE_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ...) -> None: ...

class ListZonesRequest(_message.Message):
    __slots__ = ("exclude_derived",)
    EXCLUDE_DERIVED_FIELD_NUMBER: _ClassVar[int]
    exclude_derived: bool
    def __init__(self, exclude_derived: _Optional[bool] = ...) -> None: ...

class ListZonesResponse(_message.Message):
    __slots__ = ("zones",)
    ZONES_FIELD_NUMBER: _ClassVar[int]
    zones: _containers.RepeatedCompositeFieldContainer[Zone]
    def __init__(self, zones: _Optional[_Iterable[_Union[Zone, _Mapping]]] = ...) -> None: ...

class QueryZonesRequest(_message.Message):
    __slots__ = ("box", "z_lo_amsl_m", "z_hi_amsl_m", "has_band", "start_time", "end_time")
    BOX_FIELD_NUMBER: _ClassVar[int]
    Z_LO_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    Z_HI_AMSL_M_FIELD_NUMBER: _ClassVar[int]
    HAS_BAND_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    box: _airspace_pb2.LonLatBox
    z_lo_amsl_m: float
    z_hi_amsl_m: float
    has_band: bool
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, box: _Optional[_Union[_airspace_pb2.LonLatBox, _Mapping]] = ..., z_lo_amsl_m: _Optional[float] = ..., z_hi_amsl_m: _Optional[float] = ..., has_band: _Optional[bool] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueryZonesResponse(_message.Message):
    __slots__ = ("zones",)
    ZONES_FIELD_NUMBER: _ClassVar[int]
    zones: _containers.RepeatedCompositeFieldContainer[Zone]
    def __init__(self, zones: _Optional[_Iterable[_Union[Zone, _Mapping]]] = ...) -> None: ...

class ImportEd269Request(_message.Message):
    __slots__ = ("ed269_json", "replace_existing")
    ED269_JSON_FIELD_NUMBER: _ClassVar[int]
    REPLACE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    ed269_json: str
    replace_existing: bool
    def __init__(self, ed269_json: _Optional[str] = ..., replace_existing: _Optional[bool] = ...) -> None: ...

class ImportEd269Response(_message.Message):
    __slots__ = ("zones", "affected_flight_ids")
    ZONES_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FLIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    zones: _containers.RepeatedCompositeFieldContainer[Zone]
    affected_flight_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, zones: _Optional[_Iterable[_Union[Zone, _Mapping]]] = ..., affected_flight_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportEd269Request(_message.Message):
    __slots__ = ("country", "exclude_derived")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_DERIVED_FIELD_NUMBER: _ClassVar[int]
    country: str
    exclude_derived: bool
    def __init__(self, country: _Optional[str] = ..., exclude_derived: _Optional[bool] = ...) -> None: ...

class QueryDerivedZonesRequest(_message.Message):
    __slots__ = ("box", "grid_code", "include_disabled", "category")
    BOX_FIELD_NUMBER: _ClassVar[int]
    GRID_CODE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_DISABLED_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    box: _airspace_pb2.LonLatBox
    grid_code: str
    include_disabled: bool
    category: str
    def __init__(self, box: _Optional[_Union[_airspace_pb2.LonLatBox, _Mapping]] = ..., grid_code: _Optional[str] = ..., include_disabled: _Optional[bool] = ..., category: _Optional[str] = ...) -> None: ...

class QueryDerivedZonesResponse(_message.Message):
    __slots__ = ("zones", "counts", "rules")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ZONES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    zones: _containers.RepeatedCompositeFieldContainer[Zone]
    counts: _containers.ScalarMap[str, int]
    rules: str
    def __init__(self, zones: _Optional[_Iterable[_Union[Zone, _Mapping]]] = ..., counts: _Optional[_Mapping[str, int]] = ..., rules: _Optional[str] = ...) -> None: ...

class OverrideDerivedZoneRequest(_message.Message):
    __slots__ = ("zone_id", "enabled", "category", "lower", "upper", "reason", "reset")
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    zone_id: str
    enabled: bool
    category: str
    lower: _airspace_pb2.Altitude
    upper: _airspace_pb2.Altitude
    reason: str
    reset: bool
    def __init__(self, zone_id: _Optional[str] = ..., enabled: _Optional[bool] = ..., category: _Optional[str] = ..., lower: _Optional[_Union[_airspace_pb2.Altitude, _Mapping]] = ..., upper: _Optional[_Union[_airspace_pb2.Altitude, _Mapping]] = ..., reason: _Optional[str] = ..., reset: _Optional[bool] = ...) -> None: ...

class OverrideDerivedZoneResponse(_message.Message):
    __slots__ = ("zone", "affected_flight_ids")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    AFFECTED_FLIGHT_IDS_FIELD_NUMBER: _ClassVar[int]
    zone: Zone
    affected_flight_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, zone: _Optional[_Union[Zone, _Mapping]] = ..., affected_flight_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportEd269Response(_message.Message):
    __slots__ = ("ed269_json",)
    ED269_JSON_FIELD_NUMBER: _ClassVar[int]
    ed269_json: str
    def __init__(self, ed269_json: _Optional[str] = ...) -> None: ...
