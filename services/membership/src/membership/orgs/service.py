"""Setting up union organisations (建会): where each type may sit in the tree."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared.auth import Principal
from gonghui_shared.contracts.membership import OrgCreated, OrgUpdated
from gonghui_shared.errors import Conflict, Forbidden, NotFound, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from membership.audit.service import record_transition
from membership.events.publish import publish
from membership.orgs import repository
from membership.orgs.models import ORG_TYPE_LABELS_ZH, Org, OrgType
from membership.orgs.schemas import OrgCreate, OrgRead, OrgUpdate
from membership.units.statistical_codes import COUNTY, PROVINCE, TOWNSHIP, VILLAGE, unit_level


class OrgNotFound(NotFound):
    code = "org_not_found"
    message = "Organisation not found"
    message_zh = "工会组织不存在"


class OrgNameTaken(Conflict):
    code = "org_name_taken"
    message = "An organisation with this name already exists under the same parent"
    message_zh = "同一上级组织下已有同名工会"


class RegionAlreadyCovered(Conflict):
    code = "region_already_has_union"
    message = "This township or village already has a union of this type"
    message_zh = "该乡镇或村（社区）已建立同类工会"


class InvalidPlacement(Unprocessable):
    code = "invalid_org_placement"
    message = "This type of organisation cannot be placed there"
    message_zh = "该类型的工会组织不能设在此处"


# Territorial unions: which parent type and which region level each needs.
_TERRITORIAL: dict[OrgType, tuple[OrgType | None, str]] = {
    OrgType.province_federation: (None, PROVINCE),
    OrgType.county_federation: (None, COUNTY),
    OrgType.township_union: (OrgType.county_federation, TOWNSHIP),
    OrgType.village_union: (OrgType.township_union, VILLAGE),
}
# A county federation is a root, or sits under its province's federation (省总工会), so that
# a province's figures can be shown above its counties.
_OPTIONAL_PARENT: dict[OrgType, OrgType] = {
    OrgType.county_federation: OrgType.province_federation,
}
# Orgs that number their own members: the county part of their own region code.
_OWN_COUNTY_CODE = frozenset({OrgType.province_federation, OrgType.county_federation})


def to_read(org: Org) -> OrgRead:
    return OrgRead.model_validate(
        {**vars(org), "org_type_label_zh": ORG_TYPE_LABELS_ZH[OrgType(org.org_type)]}
    )


async def get_in_scope(
    session: AsyncSession, principal: Principal, org_id: str, action: Action
) -> Org:
    """The org, if the principal may take `action` on it; 404 before 403 would leak existence."""
    principal.require(action)
    org = await repository.get(session, org_id)
    if org is None:
        raise OrgNotFound()
    principal.require(action, org.path)
    return org


def _check_placement(data: OrgCreate, parent: Org | None) -> None:
    level = unit_level(data.region_code)
    territorial = _TERRITORIAL.get(data.org_type)
    if territorial is not None:
        parent_type, wanted_level = territorial
        if level != wanted_level:
            raise InvalidPlacement(
                f"A {data.org_type.value} needs a {wanted_level}-level region code, not {level}",
                f"{ORG_TYPE_LABELS_ZH[data.org_type]}需要{wanted_level}级区划代码",
                details={"field": "region_code"},
            )
        if parent_type is None:
            _check_optional_parent(data, parent)
            return
        if parent is None or parent.org_type != parent_type:
            raise InvalidPlacement(
                f"A {data.org_type.value} must sit under a {parent_type.value}",
                f"{ORG_TYPE_LABELS_ZH[data.org_type]}的上级必须是{ORG_TYPE_LABELS_ZH[parent_type]}",
                details={"field": "parent_id"},
            )
        prefix = {TOWNSHIP: 6, VILLAGE: 9}[wanted_level]
        if data.region_code[:prefix] != parent.region_code[:prefix]:
            raise InvalidPlacement(
                "The region code is not inside the parent's region",
                "区划代码不在上级组织的辖区内",
                details={"field": "region_code"},
            )
        return
    # Enterprise and system unions and union federations may sit under any org of the county.
    if parent is None:
        raise InvalidPlacement(
            "Only a province or county federation can be a root",
            "只有省总工会或县总工会可以作为根组织",
            details={"field": "parent_id"},
        )
    if data.region_code[:6] != parent.county_code:
        raise InvalidPlacement(
            "The region code is not inside the parent's county",
            "区划代码不在上级组织所在县内",
            details={"field": "region_code"},
        )


def _check_optional_parent(data: OrgCreate, parent: Org | None) -> None:
    """A root territorial org may still sit under its own province's federation."""
    if parent is None:
        return
    above = _OPTIONAL_PARENT.get(data.org_type)
    if above is None or parent.org_type != above:
        raise InvalidPlacement(
            f"A {data.org_type.value} has no parent organisation"
            if above is None
            else f"A {data.org_type.value} is a root or sits under a {above.value}",
            f"{ORG_TYPE_LABELS_ZH[data.org_type]}不能设在此处",
            details={"field": "parent_id"},
        )
    if data.region_code[:2] != parent.region_code[:2]:
        raise InvalidPlacement(
            "The region code is not inside the parent's region",
            "区划代码不在上级组织的辖区内",
            details={"field": "region_code"},
        )


async def create(session: AsyncSession, principal: Principal, data: OrgCreate) -> Org:
    parent: Org | None = None
    if data.parent_id is None:
        if principal.role is not Role.platform_admin:
            raise Forbidden(
                "Only a platform administrator can set up a county federation",
                "只有平台管理员可以设立县总工会",
            )
    else:
        parent = await get_in_scope(session, principal, data.parent_id, Action.orgs_write)
    _check_placement(data, parent)
    if await repository.name_taken(session, data.parent_id, data.name):
        raise OrgNameTaken(details={"field": "name"})
    if data.org_type in _TERRITORIAL and await repository.territorial_union_at(
        session, data.region_code, data.org_type
    ):
        raise RegionAlreadyCovered(details={"field": "region_code"})

    org_id = new_id()
    org = Org(
        id=org_id,
        parent_id=data.parent_id,
        path=f"{parent.path if parent else '/'}{org_id}/",
        depth=(parent.depth + 1) if parent else 0,
        org_type=data.org_type.value,
        name=data.name,
        region_code=data.region_code,
        county_code=(
            data.region_code[:6]
            if parent is None or data.org_type in _OWN_COUNTY_CODE
            else parent.county_code
        ),
        founded_on=data.founded_on,
        chair_name=data.chair_name,
        lon=data.lon,
        lat=data.lat,
    )
    session.add(org)
    await session.flush()
    await record_transition(
        session, principal, entity="org", entity_id=org.id, from_state=None, to_state="active"
    )
    await publish(
        session,
        OrgCreated(
            org_id=org.id,
            parent_id=org.parent_id,
            path=org.path,
            org_type=org.org_type,
            name=org.name,
            region_code=org.region_code,
            founded_on=org.founded_on,
            lon=org.lon,
            lat=org.lat,
        ),
        aggregate_id=org.id,
        org_path=org.path,
    )
    return org


async def update(session: AsyncSession, principal: Principal, org_id: str, data: OrgUpdate) -> Org:
    org = await get_in_scope(session, principal, org_id, Action.orgs_write)
    changes = data.model_dump(exclude_unset=True)
    if (
        "name" in changes
        and changes["name"] != org.name
        and await repository.name_taken(session, org.parent_id, changes["name"])
    ):
        raise OrgNameTaken(details={"field": "name"})
    changed = [field for field, value in changes.items() if getattr(org, field) != value]
    if not changed:
        return org
    previous_status = org.status
    for field in changed:
        setattr(org, field, changes[field])
    await session.flush()
    await record_transition(
        session,
        principal,
        entity="org",
        entity_id=org.id,
        from_state=previous_status,
        to_state=org.status,
        details={"changed": changed},
    )
    await publish(
        session,
        OrgUpdated(
            org_id=org.id,
            path=org.path,
            name=org.name,
            region_code=org.region_code,
            status=org.status,
            changed=changed,
            lon=org.lon,
            lat=org.lat,
        ),
        aggregate_id=org.id,
        org_path=org.path,
    )
    return org
