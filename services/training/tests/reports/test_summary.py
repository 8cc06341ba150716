"""`GET /v1/reports/summary` on a generated county whose figures are known in advance.

The generator (`seed_training_data`) inserts a 2026 training year straight into
the tables: 31 completed sessions holding 4,805 person-times among 1,240 people
(the seed's "31期 4805人次"), plus rows that must not count (2025, another
county, cancelled or not yet held). Its `Expected` recomputes any report with
plain Python over the same plan, independently of the report's SQL.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, update

from gonghui_shared.clock import today_in_china
from gonghui_shared.db import Database
from gonghui_shared.permissions import Role
from training.budget.models import BudgetEntry
from training.certificates.models import Certificate
from training.courses.models import CourseCategory
from training.testing import (
    Api,
    Expected,
    OrgTree,
    insert_org_tree,
    insert_rows,
    report_figures,
    seed_training_data,
)

YEAR = {"from": "2026-01-01", "to": "2026-12-31"}


def database(app: FastAPI) -> Database:
    db: Database = app.state.runtime.db
    return db


async def summary(
    api: Api, org: dict[str, Any], *, as_: dict[str, str] | None = None, **params: Any
) -> dict[str, Any]:
    body: dict[str, Any] = await api.ok(
        "GET", "/v1/reports/summary", as_=as_, params={"org_id": org["id"], **params}
    )
    return body


@pytest.fixture
async def county(app: FastAPI, api: Api) -> tuple[OrgTree, Expected]:
    """Three townships of two villages each, and the generated 2026 training year.

    (`api` empties the tables first.)
    """
    tree = await insert_org_tree(database(app), townships=3, villages=2)
    return tree, await seed_training_data(database(app), tree)


async def test_person_times_and_unique_persons_are_both_reported_never_confused(
    api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    body = await summary(api, tree.county, **YEAR)
    assert body["period"] == YEAR
    assert body["org"]["id"] == tree.county["id"]
    # The seed's figures: 31 sessions, 4,805 person-times; 1,240 people, most of them at
    # several sessions or several days.
    assert body["sessions_held"] == 31
    assert body["person_times"] == 4805
    assert body["unique_persons"] == 1240
    # The sessions held, plus two not yet held; not the cancelled one, not the one begun in 2025.
    assert body["sessions_scheduled"] == 30 + 2
    # Competitors count on their own: all 60 also attended sessions, unique persons unchanged.
    assert body["competition_participants"] == 60
    # Everything else as the generator's own arithmetic says; the 2025 and other-county
    # attendance (with people seen nowhere else) is left out.
    assert report_figures(body) == expected.figures(tree.county["path"])


async def test_the_year_before_sees_only_its_own_rows(
    api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    body = await summary(api, tree.county, **{"from": "2025-01-01", "to": "2025-12-31"})
    # Two sessions held in 2025; the one straddling New Year ends in 2026, so is held then,
    # but its two December days are 2025's person-times.
    assert body["sessions_held"] == 2
    assert body["person_times"] == 2 * 30 * 2 + 78 * 2
    assert body["unique_persons"] == 78 + 10  # the straddlers, and ten seen only in 2025
    assert report_figures(body) == expected.figures(
        tree.county["path"], date(2025, 1, 1), date(2025, 12, 31)
    )


async def test_splits_by_course_category_and_worker_category(
    api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    body = await summary(api, tree.county, **YEAR)
    by_course = {row["category"]: row for row in body["by_course_category"]}
    by_worker = {row["category"]: row for row in body["by_worker_category"]}
    # Every category is listed, zeros included, with its Chinese label, in a fixed order.
    assert list(by_course) == [c.value for c in CourseCategory]
    assert list(by_worker) == [
        "migrant_worker",
        "new_employment",
        "employee",
        "other",
        "rural_labour",
    ]
    assert by_course["childcare_domestic"]["label_zh"] == "育婴师、家政"
    assert by_worker["migrant_worker"]["label_zh"] == "农民工"
    # How many migrant workers trained: four in ten of the 1,240 people.
    assert by_worker["migrant_worker"]["unique_persons"] == 496
    assert by_worker["rural_labour"]["unique_persons"] == 124
    # Sessions, person-times and certificates add up across categories; unique persons
    # need not (a person at a welding and a planting session is one person, in two rows).
    for split in (by_course, by_worker):
        assert sum(r["person_times"] for r in split.values()) == body["person_times"]
        assert sum(r["certificates"] for r in split.values()) == body["certificates"]
    assert sum(r["sessions_held"] for r in by_course.values()) == body["sessions_held"]
    assert sum(r["unique_persons"] for r in by_course.values()) > body["unique_persons"]
    assert sum(r["unique_persons"] for r in by_worker.values()) == body["unique_persons"]
    # Only certifying courses issue certificates.
    assert by_course["cadre_training"]["certificates"] == 0
    assert by_course["welding_trades"]["certificates"] > 0
    figures = expected.figures(tree.county["path"])
    assert report_figures(body)["by_course_category"] == figures["by_course_category"]
    assert report_figures(body)["by_worker_category"] == figures["by_worker_category"]


async def test_a_township_reports_its_subtree_only(
    api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    whole = await summary(api, tree.county, **YEAR)
    parts = [await summary(api, town, **YEAR) for town in tree.townships]
    for town, body in zip(tree.townships, parts, strict=True):
        assert report_figures(body) == expected.figures(town["path"])
        assert 0 < body["person_times"] < whole["person_times"]
    village = tree.villages[0]
    assert report_figures(await summary(api, village, **YEAR)) == expected.figures(village["path"])
    # The county's own sessions plus its townships' make the county's additive figures.
    own = expected.figures(tree.county["path"])["person_times"] - sum(
        expected.figures(t["path"])["person_times"] for t in tree.townships
    )
    assert own > 0, "the county hosts sessions of its own"
    assert sum(b["person_times"] for b in parts) + own == whole["person_times"]


async def test_period_bounds_are_inclusive(api: Api, county: tuple[OrgTree, Expected]) -> None:
    tree, expected = county
    path = tree.county["path"]
    # The session straddling New Year ends on 2 January: held on that day, not the day after.
    jan2 = await summary(api, tree.county, **{"from": "2026-01-02", "to": "2026-01-02"})
    assert jan2["sessions_held"] == 1
    assert jan2["person_times"] == 77  # 78 people, the last of whom left after 1 January
    jan3 = await summary(api, tree.county, **{"from": "2026-01-03", "to": "2026-01-31"})
    assert (
        jan3["sessions_held"]
        == expected.figures(path, date(2026, 1, 3), date(2026, 1, 31))["sessions_held"]
    )
    # A session's first and last days, taken as the bounds, count all its days; one day
    # later and its first day's attendance is gone.
    several_days = [s for s in expected.sessions[1:] if s[2] < s[3]]
    for _, _, first, last, _ in several_days[:4]:
        whole = await summary(api, tree.county, **{"from": str(first), "to": str(last)})
        assert report_figures(whole) == expected.figures(path, first, last)
        later = first + timedelta(days=1)
        inner = await summary(api, tree.county, **{"from": str(later), "to": str(last)})
        assert report_figures(inner) == expected.figures(path, later, last)
        assert inner["person_times"] < whole["person_times"]


async def test_default_period_is_this_calendar_year_in_china(
    api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    year = today_in_china().year
    body = await summary(api, tree.county)
    assert body["period"] == {"from": f"{year}-01-01", "to": f"{year}-12-31"}
    assert report_figures(body) == expected.figures(
        tree.county["path"], date(year, 1, 1), date(year, 12, 31)
    )
    only_from = await summary(api, tree.county, **{"from": f"{year}-07-01"})
    assert only_from["period"] == {"from": f"{year}-07-01", "to": f"{year}-12-31"}


async def test_revoked_certificates_are_not_counted_as_issued(
    app: FastAPI, api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    before = await summary(api, tree.county, **YEAR)
    figures = expected.figures(tree.county["path"])
    assert before["certificates"] == figures["certificates"]
    assert before["certificates_revoked"] == figures["certificates_revoked"] > 0
    async with database(app).transaction() as session:
        number = await session.scalar(
            select(Certificate.number)
            .where(Certificate.status == "valid", Certificate.host_org_path == tree.county["path"])
            .limit(1)
        )
        await session.execute(
            update(Certificate).where(Certificate.number == number).values(status="revoked")
        )
    after = await summary(api, tree.county, **YEAR)
    assert after["certificates"] == before["certificates"] - 1
    assert after["certificates_revoked"] == before["certificates_revoked"] + 1


async def test_cost_per_person_time_and_per_certified_person_are_exact(
    app: FastAPI, api: Api
) -> None:
    db = database(app)
    tree = await insert_org_tree(db, townships=1, villages=1)
    # One two-person session at the county over New Year, both certified: 4 person-times
    # in 2026 (2 people x 2 days), 2 certified persons.
    expected = await seed_training_data(db, tree, sessions=1, person_times=4, people=2, noise=False)
    assert expected.figures(tree.county["path"])["certified_persons"] == 2
    async with db.transaction() as session:
        session_id = await session.scalar(select(BudgetEntry.session_id).limit(1))
        await session.execute(delete(BudgetEntry))

    def entry(kind: str, fen: int, day: date, path: str) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "host_org_path": path,
            "kind": kind,
            "category": "trainer",
            "amount_fen": fen,
            "entry_date": day,
            "recorded_by": "test",
        }

    inside = tree.county["path"]
    await insert_rows(
        db,
        (
            BudgetEntry,
            [
                entry("planned", 10, date(2026, 1, 1), inside),  # 0.10 + 0.20 is 0.30 exactly
                entry("planned", 20, date(2026, 12, 31), inside),
                entry("spent", 10, date(2026, 1, 1), inside),
                entry("spent", 100_000, date(2026, 12, 31), inside),
                entry("spent", 555, date(2025, 12, 31), inside),  # the year before
                entry("spent", 777, date(2026, 6, 1), "/elsewhere/"),  # another county
            ],
        ),
    )
    body = await summary(api, tree.county, **YEAR)
    assert body["person_times"] == 4 and body["certified_persons"] == 2
    # 1000.10 / 4 = 250.025: half up gives 250.03 (banker's rounding would give 250.02).
    assert body["cost"] == {
        "planned": "0.30",
        "spent": "1000.10",
        "per_person_time": "250.03",
        "per_certified_person": "500.05",
    }
    # Nothing to divide by: null, not zero and not an error.
    empty = await summary(api, tree.villages[0], **YEAR)
    assert empty["cost"] == {
        "planned": "0.00",
        "spent": "0.00",
        "per_person_time": None,
        "per_certified_person": None,
    }


async def test_cost_of_the_generated_year(api: Api, county: tuple[OrgTree, Expected]) -> None:
    tree, expected = county
    body = await summary(api, tree.county, **YEAR)
    assert body["cost"] == expected.figures(tree.county["path"])["cost"]
    # 270,025.50 yuan spent over 4,805 person-times.
    assert body["cost"]["spent"] == "270025.50"
    assert body["cost"]["per_person_time"] == "56.20"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-12-31", "to": "2026-01-01"}, "from"),
        ({"from": "2020-01-01", "to": "2025-01-02"}, "to"),  # more than five years
        ({"from": "2024-02-29", "to": "2029-03-01"}, "to"),
        ({"from": "2026-02-30", "to": "2026-12-31"}, "from"),
        ({"from": "2026-01-01", "to": "someday"}, "to"),
    ],
)
async def test_a_bad_period_is_422_naming_the_field(
    app: FastAPI, api: Api, params: dict[str, str], field: str
) -> None:
    tree = await insert_org_tree(database(app), townships=0)
    response = await api.client.get(
        "/v1/reports/summary", params={"org_id": tree.county["id"], **params}, headers=api.platform
    )
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    fields = {details["field"]} if isinstance(details, dict) else {d["field"] for d in details}
    assert fields == {field}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2021-01-01", "2026-01-01"),  # five years exactly
        ("2024-02-29", "2029-02-28"),  # from a leap day
        ("9999-01-01", "9999-12-31"),  # the last year there is
        ("0001-01-01", "0001-01-01"),
    ],
)
async def test_periods_at_the_limits_are_allowed(
    app: FastAPI, api: Api, start: str, end: str
) -> None:
    tree = await insert_org_tree(database(app), townships=0)
    body = await summary(api, tree.county, **{"from": start, "to": end})
    assert body["period"] == {"from": start, "to": end}
    assert body["person_times"] == 0 and body["cost"]["per_person_time"] is None


async def test_an_unknown_org_is_404_and_a_missing_one_422(api: Api) -> None:
    response = await api.client.get(
        "/v1/reports/summary", params={"org_id": "nope"}, headers=api.platform
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "org_not_found"
    response = await api.client.get("/v1/reports/summary", headers=api.platform)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "org_id"


@pytest.mark.parametrize(
    ("role", "scope", "status", "code"),
    [
        (Role.org_chair, "village", 403, "out_of_scope"),  # a village chair asks for the county
        (Role.org_chair, "county", 200, None),
        (Role.county_admin, "other_county", 403, "out_of_scope"),
        (Role.county_admin, "county", 200, None),
        (Role.gov_system, "county", 200, None),
        (Role.gov_system, "township", 403, "out_of_scope"),
        (Role.station_operator, "county", 403, "forbidden"),
        (Role.member, None, 403, "forbidden"),
        (Role.platform_admin, None, 200, None),
    ],
)
@pytest.mark.parametrize("url", ["/v1/reports/summary", "/v1/reports/cadre-training"])
async def test_scope_of_the_county_reports(
    app: FastAPI,
    api: Api,
    role: Role,
    scope: str | None,
    status: int,
    code: str | None,
    url: str,
) -> None:
    db = database(app)
    tree = await insert_org_tree(db, townships=1, villages=1)
    other = await insert_org_tree(db, townships=0, county_code="530922", name="云县总工会")
    scopes = {
        "county": tree.county,
        "township": tree.townships[0],
        "village": tree.villages[0],
        "other_county": other.county,
        None: None,
    }
    claims = {"member_no": "5309212026000001"} if role is Role.member else {}
    headers = api.headers(role, scopes[scope], **claims)
    response = await api.client.get(url, params={"org_id": tree.county["id"]}, headers=headers)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"]["code"] == code


async def test_a_village_chair_sees_their_own_village(
    api: Api, county: tuple[OrgTree, Expected]
) -> None:
    tree, expected = county
    village = tree.villages[-1]
    body = await summary(api, village, as_=api.headers(Role.org_chair, village), **YEAR)
    assert report_figures(body) == expected.figures(village["path"])
