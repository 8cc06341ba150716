"""`GET /v1/reports/cadre-training`: how many of a subtree's cadres completed cadre training.

The seed: "全县已全覆盖完成村级工会干部945人的工会业务知识培训". Here a county of
ten cadres, seven of them trained, with the ways a cadre can look trained and
not be (enrolled but not completed, completed another kind of course).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import FastAPI

from gonghui_shared.clock import CHINA
from gonghui_shared.db import Database
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Role
from training.courses.models import Course
from training.enrolments.models import Enrolment
from training.replicas.models import CadreReplica, MemberReplica
from training.sessions.models import TrainingSession
from training.testing import Api, OrgTree, insert_org_tree, insert_rows


def member_no(n: int) -> str:
    return f"5309212026{n:06d}"


class CadreWorld:
    """Rows for cadres, their members and their enrolments, inserted in one go."""

    def __init__(self, tree: OrgTree, outside: OrgTree) -> None:
        self.tree, self.outside = tree, outside
        self.courses: dict[str, str] = {}
        self.rows: dict[Any, list[dict[str, Any]]] = {
            Course: [],
            TrainingSession: [],
            Enrolment: [],
            CadreReplica: [],
            MemberReplica: [],
        }

    def member(self, n: int, org: dict[str, Any], name: str | None = None) -> str:
        self.rows[MemberReplica].append(
            {
                "member_no": member_no(n),
                "member_id": new_id(),
                "name": name or f"干部{n}",
                "category": "employee",
                "org_id": org["id"],
                "org_path": org["path"],
                "status": "active",
                "last_event_at": datetime.now(UTC),
            }
        )
        return member_no(n)

    def cadre(self, n: int, org: dict[str, Any], role: str = "chair") -> None:
        self.rows[CadreReplica].append(
            {
                "cadre_id": new_id(),
                "member_no": member_no(n),
                "org_id": org["id"],
                "org_path": org["path"],
                "role": role,
                "appointed_on": date(2024, 1, 1),
            }
        )

    def session(self, host: dict[str, Any], category: str, people: dict[int, str]) -> None:
        """A session of a `category` course at `host`; people: member -> enrolment status."""
        if category not in self.courses:
            self.courses[category] = new_id()
            self.rows[Course].append(
                {
                    "id": self.courses[category],
                    "owner_org_id": host["id"],
                    "owner_org_path": host["path"],
                    "title": "工会业务知识培训",
                    "category": category,
                    "skills": [],
                    "target_groups": ["cadres"],
                    "leads_to_certificate": False,
                    "hours": 16.0,
                    "created_by": "test",
                }
            )
        session_id = new_id()
        day = date(2026, 4, 8)
        self.rows[TrainingSession].append(
            {
                "id": session_id,
                "course_id": self.courses[category],
                "course_category": category,
                "host_org_id": host["id"],
                "host_org_path": host["path"],
                "starts_at": datetime.combine(day, time(9), CHINA),
                "ends_at": datetime.combine(day, time(17), CHINA),
                "first_day": day,
                "last_day": day,
                "delivery_mode": "classroom",
                "capacity": 50,
                "status": "completed",
                "created_by": "test",
            }
        )
        for n, status in people.items():
            self.rows[Enrolment].append(
                {
                    "session_id": session_id,
                    "person_key": f"m:{member_no(n)}",
                    "member_no": member_no(n),
                    "name": f"干部{n}",
                    "worker_category": "employee",
                    "invite_to_join": False,
                    "status": status,
                    "enrolled_by": "test",
                }
            )

    async def insert(self, db: Database) -> None:
        await insert_rows(db, *self.rows.items())


async def ten_cadres_seven_trained(db: Database) -> tuple[OrgTree, CadreWorld]:
    tree = await insert_org_tree(db, townships=2, villages=2)
    outside = await insert_org_tree(db, townships=0, county_code="530922", name="云县总工会")
    world = CadreWorld(tree, outside)
    county, (t1, t2), villages = tree.county, tree.townships, tree.villages
    posts = [county, t1, t2, *villages, county, t1, villages[0]]  # cadres 0..9
    for n, org in enumerate(posts):
        world.cadre(n, org)
        # Cadre 9 is not (yet) known as a member: listed without a name.
        if n != 9:
            world.member(n, org)
    world.cadre(0, villages[3], role="vice_chair")  # two posts, one person
    world.cadre(20, outside.county)  # another county's cadre
    world.member(20, outside.county)
    completed = "completed"
    world.session(county, "cadre_training", {n: completed for n in (1, 2, 3, 4, 5)})
    # Trained elsewhere still counts: the city federation ran cadre 0's and 6's course.
    world.session(outside.county, "cadre_training", {0: completed, 6: completed, 20: completed})
    world.session(county, "cadre_training", {7: "enrolled", 8: "not_completed"})
    world.session(county, "welding_trades", {8: completed, 9: completed})
    await world.insert(db)
    return tree, world


async def coverage(api: Api, org: dict[str, Any], **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await api.ok(
        "GET", "/v1/reports/cadre-training", params={"org_id": org["id"], **params}
    )
    return body


async def test_ten_cadres_seven_trained(app: FastAPI, api: Api) -> None:
    tree, _ = await ten_cadres_seven_trained(app.state.runtime.db)
    body = await coverage(api, tree.county)
    assert body["org"]["id"] == tree.county["id"]
    assert (body["cadres_total"], body["cadres_trained"], body["cadres_untrained"]) == (10, 7, 3)
    assert body["rate"] == 0.7
    # The untrained, by org path then member number: 7 (enrolled only), 8 (welding, and a
    # cadre course not completed), 9 (nothing, and unknown to the member replica).
    untrained = {u["member_no"]: u for u in body["untrained"]}
    assert set(untrained) == {member_no(7), member_no(8), member_no(9)}
    assert untrained[member_no(7)] == {
        "member_no": member_no(7),
        "name": "干部7",
        "org_id": tree.county["id"],
        "org_path": tree.county["path"],
        "org_name": "凤庆县总工会",
    }
    assert untrained[member_no(9)]["name"] is None
    assert untrained[member_no(9)]["org_id"] == tree.villages[0]["id"]
    paths = [(u["org_path"], u["member_no"]) for u in body["untrained"]]
    assert paths == sorted(paths)


async def test_a_township_counts_its_own_cadres(app: FastAPI, api: Api) -> None:
    tree, _ = await ten_cadres_seven_trained(app.state.runtime.db)
    t1 = tree.townships[0]
    # Township 1 and its villages 0 and 1: cadres 1, 3, 4, 8 and 9.
    body = await coverage(api, t1)
    assert (body["cadres_total"], body["cadres_trained"]) == (5, 3)
    assert body["rate"] == 0.6
    assert [u["member_no"] for u in body["untrained"]] == [member_no(8), member_no(9)]
    t2 = await coverage(api, tree.townships[1])
    # Township 2: cadres 2, 5, 6 and cadre 0 (vice chair in village 3), all trained.
    assert (t2["cadres_total"], t2["cadres_trained"], t2["untrained"]) == (4, 4, [])
    assert t2["rate"] == 1.0


async def test_the_list_is_limited_but_the_counts_are_not(app: FastAPI, api: Api) -> None:
    tree, _ = await ten_cadres_seven_trained(app.state.runtime.db)
    body = await coverage(api, tree.county, limit=2)
    assert len(body["untrained"]) == 2 and body["cadres_untrained"] == 3
    response = await api.client.get(
        "/v1/reports/cadre-training",
        params={"org_id": tree.county["id"], "limit": 0},
        headers=api.platform,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "limit"


async def test_no_cadres_means_no_rate(app: FastAPI, api: Api) -> None:
    tree = await insert_org_tree(app.state.runtime.db, townships=1, villages=1)
    body = await coverage(api, tree.villages[0])
    assert (body["cadres_total"], body["cadres_trained"], body["rate"]) == (0, 0, None)
    assert body["untrained"] == []


async def test_a_village_chair_sees_their_village_only(app: FastAPI, api: Api) -> None:
    tree, _ = await ten_cadres_seven_trained(app.state.runtime.db)
    village = tree.villages[0]
    chair = api.headers(Role.org_chair, village)
    body = await api.ok(
        "GET", "/v1/reports/cadre-training", as_=chair, params={"org_id": village["id"]}
    )
    # Village 0: cadre 3 (trained) and cadre 9 (not).
    assert (body["cadres_total"], body["cadres_trained"]) == (2, 1)
    denied = await api.client.get(
        "/v1/reports/cadre-training", params={"org_id": tree.county["id"]}, headers=chair
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "out_of_scope"
