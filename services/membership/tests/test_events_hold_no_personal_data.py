"""No event membership publishes carries a plain ID number or phone.

Workers go through every step that publishes an event about a person (applied, approved,
rejected, transferred, withdrawn, lapsed, expelled, appointed a cadre); then every payload
in the outbox, exactly as the relay hands it to NATS, is searched for their ID numbers,
phones in every spelling, the masked forms and the birth dates.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from gonghui_shared.contracts.membership import EVENTS, OrgCreated, OrgUpdated, UnitsRegistered
from gonghui_shared.permissions import Role
from membership.base import outbox
from membership.testing import Api, applicant

# Events about orgs and administrative units, never about a person.
NO_PERSON = {OrgCreated.type, OrgUpdated.type, UnitsRegistered.type}


async def test_no_event_about_a_person_carries_their_id_number_or_phone(
    api: Api, app: FastAPI
) -> None:
    county, township, village = await api.tree()
    other = await api.child(township, "village_union", "东城社区工会联合会", "530921101202")
    admin = api.headers(Role.county_admin, county)
    people = [applicant() for _ in range(6)]
    roster = await api.roster(village)
    applications = [await api.apply(village, roster, **person) for person in people]
    members = [
        (await api.approve(county, application))["member"]["member_no"]
        for application in applications[:5]
    ]
    await api.ok(
        "POST",
        f"/v1/applications/{applications[5]['id']}/reject",
        as_=admin,
        json={"reason": "申请书未由本人签字"},
    )
    transfer = await api.ok(
        "POST",
        f"/v1/members/{members[0]}/transfer",
        as_=api.headers(Role.org_chair, village),
        expect=201,
        json={"to_org_id": other["id"], "reason": "搬到社区居住"},
    )
    await api.ok(
        "POST", f"/v1/transfers/{transfer['id']}/accept", as_=api.headers(Role.org_chair, other)
    )
    for member_no, ending in zip(members[1:4], ("withdraw", "lapse", "expel"), strict=True):
        await api.ok(
            "POST", f"/v1/members/{member_no}/{ending}", as_=admin, json={"reason": "本人申请"}
        )
    await api.ok(
        "POST",
        f"/v1/orgs/{village['id']}/cadres",
        expect=201,
        json={"member_no": members[4], "role": "chair", "appointed_on": "2026-01-05"},
    )

    async with app.state.runtime.db.transaction() as session:
        rows = (await session.execute(select(outbox.c.event_type, outbox.c.payload))).all()
    about_people = {t for t, _ in rows} - NO_PERSON
    assert about_people == {event.type for event in EVENTS} - NO_PERSON, (
        "an event about a person is not exercised here: add its step above"
    )
    payloads = "\n".join(payload for _, payload in rows)
    for person in people:
        id_number, phone = person["id_number"], person["phone"]
        masked_id = id_number[:6] + "********" + id_number[-4:]
        masked_phone = phone[:3] + "****" + phone[-4:]
        for secret in (id_number, id_number[6:14], phone, f"+86{phone}", masked_id, masked_phone):
            assert secret not in payloads
