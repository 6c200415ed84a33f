"""The live feeds' ``area`` message as models, for its JSON Schema in the AsyncAPI document
(``api.asyncapi``); the hub builds the dicts itself (``api.live.areas``), and the tests
check what it sends against this schema."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contract.payload import Reading


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AreaMetric(_Strict):
    value: float = Field(description="The area's reading of the metric's latest values")
    reading: Reading = Field(
        description="sum or last_sum: the entities' latest values added; mean: their average"
    )
    entities: int = Field(ge=1, description="Entities whose latest readings have the metric")


class AreaAlerts(_Strict):
    critical: int = Field(ge=0)
    warning: int = Field(ge=0)
    info: int = Field(ge=0)


class AreaDomain(_Strict):
    entities: int = Field(
        ge=0,
        description="Entities the registry places in the area; the province's also counts "
        "those it places nowhere that report (unplaced)",
    )
    reporting: int = Field(ge=0, description="Of those, entities with a live state")
    unplaced: int = Field(
        ge=0,
        description="Of those, reporting entities the registry places in no area: counted "
        "in the province only (0 in zones and communes)",
    )
    alerts_open: AreaAlerts = Field(description="Open and acknowledged alerts by severity")
    metrics: dict[str, AreaMetric] = Field(description="By metric name (contract.catalog)")


class AreaTile(_Strict):
    area_id: str
    kind: Literal["province", "zone", "commune"]
    name: str
    name_vi: str
    at: AwareDatetime | None = Field(description="The newest event time among its entities")
    domains: dict[str, AreaDomain] = Field(
        description="Every domain, or those the client's domain filter names"
    )
    incidents_open: int = Field(
        ge=0, description="Incidents on screens placed in the area or in an area inside it"
    )


class AreaMessage(_Strict):
    """An area's tile: sent when something in it changed, at most once per
    IOC_LIVE__AREA_INTERVAL_S per area; the latest replaces a waiting one."""

    id: str = Field(pattern=r"^.+-[0-9]+$", description="<epoch>-<seq> of the hub")
    type: Literal["area"]
    area: AreaTile
