"""Administrative units (行政区划) and how far unions cover them (建会覆盖).

Units come from the statistics bureau's list of statistical division codes; a
county federation imports its own county, the platform any. Coverage counts, per
level, the units of an org's region that have an active union of the matching
territorial type, in SQL, so a county of a thousand villages costs a few queries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.bus.outbox import OutboxItem, record_events
from gonghui_shared.contracts.membership import RegisteredUnit, UnitsRegistered
from gonghui_shared.errors import NotFound, OutOfScope, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from membership.audit.service import record_transition
from membership.base import outbox, utcnow
from membership.orgs import repository as orgs_repository
from membership.orgs import service as orgs_service
from membership.units import repository
from membership.units.models import AdminUnit
from membership.units.repository import UNION_TYPE_OF_LEVEL
from membership.units.schemas import Coverage, LevelCoverage, UncoveredUnit, UnitsImported
from membership.units.statistical_codes import (
    UnitRow,
    UnitsFileError,
    levels_below,
    read_units_csv,
    region_prefix,
    unit_level,
)

# How many offending codes an out-of-scope import names; the count says the rest.
_SHOWN_CODES = 10

# Units per `membership.units.registered` event: ~75 KB of JSON, well under NATS's 1 MB.
UNITS_PER_EVENT = 500


class UnitNotFound(NotFound):
    code = "unit_not_found"
    message = "Administrative unit not found"
    message_zh = "行政区划不存在"


class InvalidUnitsFile(Unprocessable):
    code = "invalid_units_file"
    message = "The units file cannot be read"
    message_zh = "行政区划文件无法读取"


async def get(session: AsyncSession, code: str) -> AdminUnit:
    unit = await repository.get(session, code)
    if unit is None:
        raise UnitNotFound()
    return unit


async def _import_prefix(session: AsyncSession, principal: Principal) -> str | None:
    """The code prefix the principal may import under: their county's, or None for any."""
    principal.require(Action.units_write)
    if principal.role is Role.platform_admin:
        return None
    org = await orgs_repository.get(session, principal.org_id) if principal.org_id else None
    if org is None:
        raise OutOfScope("Your token names no organisation", "令牌未指明所属组织")
    principal.require(Action.units_write, org.path)
    return org.county_code


def _parse(data: bytes) -> list[UnitRow]:
    try:
        units = read_units_csv(data)
    except UnitsFileError as exc:
        raise InvalidUnitsFile(
            f"The units file cannot be read: {exc}",
            f"行政区划文件无法读取：{exc}",
            details={"field": "file", "line": exc.line, "problem": exc.message},
        ) from None
    if not units:
        raise InvalidUnitsFile(
            "The units file lists no units",
            "行政区划文件中没有任何区划",
            details={"field": "file", "line": None, "problem": "no units"},
        )
    return units


async def import_units(session: AsyncSession, principal: Principal, data: bytes) -> UnitsImported:
    """Upsert the units of a national-layout csv; a county may import only its own codes."""
    prefix = await _import_prefix(session, principal)
    units = _parse(data)
    if prefix is not None:
        outside = [u.code for u in units if not u.code.startswith(prefix)]
        if outside:
            raise OutOfScope(
                f"{len(outside)} codes are outside county {prefix}: {', '.join(outside[:3])}",
                f"有 {len(outside)} 个区划代码不在本县（{prefix}）范围内：{'、'.join(outside[:3])}",
                details={"field": "file", "codes": outside[:_SHOWN_CODES], "count": len(outside)},
            )

    stored = await repository.known(session, [u.code for u in units])
    now = utcnow()
    created: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    announced: list[RegisteredUnit] = []
    for unit in units:
        old = stored.get(unit.code)
        announced.append(_registered(unit, old))
        if old is None:
            created.append(
                {
                    "code": unit.code,
                    "name": unit.name,
                    "level": unit.level,
                    "parent_code": unit.parent_code,
                    "urban_rural_code": unit.urban_rural_code,
                    "lon": unit.lon,
                    "lat": unit.lat,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            continue
        # Blank cells keep what is stored: a list without coordinates must not erase them.
        new = {
            "name": unit.name,
            "urban_rural_code": unit.urban_rural_code or old.urban_rural_code,
            "lon": unit.lon if unit.lon is not None else old.lon,
            "lat": unit.lat if unit.lat is not None else old.lat,
        }
        if any(getattr(old, column) != value for column, value in new.items()):
            changed.append({"code": unit.code, **new, "updated_at": now})
    await repository.insert_units(session, created)
    await repository.update_units(session, changed)
    await _announce(session, announced)
    result = UnitsImported(
        created=len(created),
        updated=len(changed),
        unchanged=len(units) - len(created) - len(changed),
        total=len(units),
    )
    await record_transition(
        session,
        principal,
        entity="admin_units",
        entity_id=prefix or _common_county(units),
        from_state=None,
        to_state="imported",
        details=result.model_dump(),
    )
    return result


def _registered(unit: UnitRow, old: Any) -> RegisteredUnit:
    """The unit as stored after the import: blank cells of the file keep the stored values."""
    keep = old is not None
    return RegisteredUnit(
        code=unit.code,
        name=unit.name,
        level=unit.level,
        parent_code=unit.parent_code,
        urban_rural_code=unit.urban_rural_code or (old.urban_rural_code if keep else None),
        lon=unit.lon if unit.lon is not None or not keep else old.lon,
        lat=unit.lat if unit.lat is not None or not keep else old.lat,
    )


async def _announce(session: AsyncSession, units: list[RegisteredUnit]) -> None:
    """Every unit of the file, changed or not, in the import's transaction (via the outbox).

    Announcing the unchanged ones too lets a consumer that missed an earlier import (or
    was set up after it) catch up by importing the same file again.
    """
    import_id = new_id()
    chunks = [units[i : i + UNITS_PER_EVENT] for i in range(0, len(units), UNITS_PER_EVENT)]
    await record_events(
        session,
        outbox,
        [
            OutboxItem(
                UnitsRegistered(import_id=import_id, chunk=n, chunks=len(chunks), units=chunk),
                import_id,
            )
            for n, chunk in enumerate(chunks, 1)
        ],
    )


def _common_county(units: list[UnitRow]) -> str:
    """The county all units lie in, or "*" for a list spanning several."""
    counties = {unit.code[:6] for unit in units}
    return counties.pop() if len(counties) == 1 else "*"


def _level(level: str | None, counts: tuple[int, int]) -> LevelCoverage:
    total, covered = counts
    rate = round(covered / total, 4) if total else None
    return LevelCoverage.model_validate(
        {"level": level, "total": total, "covered": covered, "rate": rate}
    )


async def coverage(
    session: AsyncSession, principal: Principal, org_id: str, limit: int
) -> Coverage:
    """Coverage of the org's region: its direct units, every level below, the units missing."""
    org = await orgs_service.get_in_scope(session, principal, org_id, Action.orgs_read)
    level = unit_level(org.region_code)
    below = [lvl for lvl in levels_below(level) if lvl in UNION_TYPE_OF_LEVEL]
    prefix = region_prefix(org.region_code)
    unit = await repository.get(session, org.region_code)
    if not below:
        return Coverage(
            org_id=org.id,
            region_code=org.region_code,
            unit_name=unit.name if unit else None,
            direct=_level(None, (0, 0)),
            levels=[],
            uncovered=[],
            uncovered_total=0,
        )
    by_level = await repository.coverage_by_level(session, prefix, below)
    levels = [_level(lvl, by_level.get(lvl, (0, 0))) for lvl in below]
    missing = await repository.uncovered(session, prefix, below, limit)
    return Coverage(
        org_id=org.id,
        region_code=org.region_code,
        unit_name=unit.name if unit else None,
        direct=_level(below[0], await repository.direct_coverage(session, org.region_code)),
        levels=levels,
        uncovered=[UncoveredUnit.model_validate(u, from_attributes=True) for u in missing],
        uncovered_total=sum(lv.total - lv.covered for lv in levels),
    )
