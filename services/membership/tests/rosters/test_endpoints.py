"""Roster (花名册) import and export over HTTP: the report, bulk import, export round trip."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import func, select, text
from stdnum.cn import ric

from gonghui_shared import db as db_module
from gonghui_shared.permissions import ApiScope, Role, scope_actions
from membership.admissions.models import Application, Roster
from membership.audit.models import Transition
from membership.base import outbox
from membership.rosters import repository as rosters_repository
from membership.rosters import service as rosters_service
from membership.rosters.template import TEMPLATE_COLUMNS, write_roster_csv, write_roster_xlsx
from membership.testing import Api

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = [column.header_zh for column in TEMPLATE_COLUMNS if not column.export_only]


def id_number(n: int) -> str:
    """A checksum-valid ID number of a man of the seed county, distinct for n below 5,000,000."""
    birth = date(1970, 1, 1) + timedelta(days=n % 10_000)
    first17 = f"530921{birth:%Y%m%d}{(n // 10_000 * 2 + 1) % 1000:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")  # it skips the check digit slot


def person(n: int, **overrides: str) -> dict[str, str]:
    row = {
        "name": f"李{n}",
        "id_number": id_number(n),
        "phone": f"138{n:08d}",
        "household_type": "农村",
        "category": "农民工",
        "subtype": "",
        "employer": "凤庆县滇红茶厂",
        "form_ref": f"FQ-2026-{n:05d}",
    }
    row.update(overrides)
    return row


def bad_checksum(number: str) -> str:
    return number[:-1] + ("1" if number[-1] != "1" else "2")


def xlsx_file(rows: list[dict[str, str]]) -> bytes:
    out = io.BytesIO()
    write_roster_xlsx(rows, out)
    return out.getvalue()


def csv_file(rows: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    if encoding == "utf-8":
        out = io.StringIO(newline="")
        write_roster_csv(rows, out)
        return out.getvalue().encode("utf-8")
    # As Excel in China saves "CSV": GB18030, Chinese headers, no BOM.
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(HEADER)
    codes = [column.code for column in TEMPLATE_COLUMNS if not column.export_only]
    for row in rows:
        writer.writerow([row.get(code, "") for code in codes])
    return out.getvalue().encode(encoding)


async def upload(
    api: Api,
    org: dict[str, Any],
    data: bytes,
    filename: str = "花名册.xlsx",
    *,
    as_: dict[str, str] | None = None,
    **params: Any,
) -> Any:
    params = {"org_id": org["id"], **{k: str(v).lower() for k, v in params.items()}}
    return await api.client.post(
        "/v1/rosters/import",
        headers=as_ or api.headers(Role.org_chair, org),
        params=params,
        files={"file": (filename, data, XLSX if filename.endswith("xlsx") else "text/csv")},
    )


async def count(app: FastAPI, query: Any) -> int:
    async with app.state.runtime.db.transaction() as session:
        return int(await session.scalar(query) or 0)


async def written(app: FastAPI) -> dict[str, int]:
    """Rows the import writes, by table."""
    return {
        "rosters": await count(app, select(func.count()).select_from(Roster)),
        "applications": await count(app, select(func.count()).select_from(Application)),
        "transitions": await count(
            app,
            select(func.count()).select_from(Transition).where(Transition.entity == "application"),
        ),
        "submitted_events": await count(
            app,
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.event_type == "membership.application.submitted"),
        ),
    }


def api_body(row: dict[str, str]) -> dict[str, str]:
    """The same person as an application body for the admissions API."""
    return {
        "name": row["name"],
        "id_number": row["id_number"],
        "phone": row["phone"],
        "household_type": "rural",
        "category": "migrant_worker",
        "employer": row["employer"],
        "form_ref": row["form_ref"],
    }


# ---------------------------------------------------------------- template


async def test_template_description_and_blank_files(api: Api) -> None:
    _, _, village = await api.tree()
    chair = api.headers(Role.org_chair, village)

    description = await api.ok("GET", "/v1/rosters/template", as_=chair)
    codes = [c["code"] for c in description["columns"]]
    assert codes[:3] == ["seq", "name", "id_number"]
    assert {c["code"] for c in description["columns"] if c["required"]} == {
        "name",
        "id_number",
        "phone",
        "household_type",
        "category",
        "form_ref",
    }
    assert description["file_types"] == ["xlsx", "csv"] and description["max_bytes"] > 0

    response = await api.client.get("/v1/rosters/template.xlsx", headers=chair)
    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    assert "filename*=UTF-8''" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    assert [cell.value for cell in sheet[1]] == [column.header for column in TEMPLATE_COLUMNS]
    assert sheet.max_row == 1

    blank_csv = await api.client.get("/v1/rosters/template.csv", headers=chair)
    assert blank_csv.status_code == 200
    assert blank_csv.content.decode("utf-8").startswith("\ufeff序号(seq),姓名(name)")

    exporter = await api.client.get(
        "/v1/rosters/template", headers=api.headers(Role.gov_system, village)
    )
    assert exporter.status_code == 200
    operator = await api.client.get(
        "/v1/rosters/template.xlsx", headers=api.headers(Role.station_operator, village)
    )
    assert operator.status_code == 403 and operator.json()["error"]["code"] == "forbidden"
    assert (await api.client.get("/v1/rosters/template")).status_code == 401


# ---------------------------------------------------------------- import


async def mixed_file(api: Api) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A village and rows 2-10: good, bad checksum, bad phone, missing name, bad category,
    duplicate of row 2, an active member, a pending application, good."""
    county, _, village = await api.tree()
    member, pending = person(900), person(901)
    await api.member(county, village, **api_body(member))
    await api.apply(village, **api_body(pending))
    return village, [
        person(1),
        person(2, id_number=bad_checksum(id_number(2))),
        person(3, phone="12345"),
        person(4, name=""),
        person(5, category="学生"),
        person(6, id_number=id_number(1)),
        member,
        pending,
        person(7, category="新就业形态劳动者", subtype="外卖骑手"),
    ]


EXPECTED_ERRORS = [
    (3, "id_number", "checksum"),
    (4, "phone", "invalid"),
    (5, "name", "required"),
    (6, "category", "invalid_choice"),
    (7, "id_number", "duplicate"),
    (8, "id_number", "already_member"),
    (9, "id_number", "duplicate_application"),
]


async def test_dry_run_reports_every_row_and_writes_nothing(api: Api, app: FastAPI) -> None:
    village, rows = await mixed_file(api)
    before = await written(app)

    response = await upload(api, village, xlsx_file(rows), dry_run=True)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is True and report["roster_id"] is None
    assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == EXPECTED_ERRORS
    assert all(e["message"] and e["message_zh"] for e in report["errors"])
    assert (report["rows_total"], report["rows_valid"], report["rows_invalid"]) == (9, 2, 4)
    assert (report["rows_duplicate"], report["rows_imported"], report["errors_total"]) == (3, 0, 7)
    assert [p["row"] for p in report["preview"]] == [2, 10]
    first = report["preview"][0]
    assert first["id_number"] == id_number(1)[:6] + "********" + id_number(1)[-4:]
    assert first["phone"] == "138****0001" and first["category"] == "migrant_worker"
    assert report["preview"][1]["subtype"] == "rider"
    assert await written(app) == before


async def test_real_run_with_errors_is_refused_and_writes_nothing(api: Api, app: FastAPI) -> None:
    village, rows = await mixed_file(api)
    before = await written(app)

    response = await upload(api, village, xlsx_file(rows), dry_run=False)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "roster_has_errors" and error["message_zh"]
    assert error["details"]["dry_run"] is False and error["details"]["roster_id"] is None
    assert [(e["row"], e["code"]) for e in error["details"]["errors"]] == [
        (row, code) for row, _, code in EXPECTED_ERRORS
    ]
    assert await written(app) == before


async def test_skip_invalid_imports_the_good_rows_on_a_new_roster(api: Api, app: FastAPI) -> None:
    village, rows = await mixed_file(api)
    before = await written(app)

    response = await upload(api, village, xlsx_file(rows), "凤庆 花名册.xlsx", skip_invalid=True)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["dry_run"] is False and report["roster_id"]
    assert (report["rows_valid"], report["rows_imported"], report["errors_total"]) == (2, 2, 7)
    after = await written(app)
    assert after["rosters"] == before["rosters"] + 1
    assert after["applications"] == before["applications"] + 2
    assert after["transitions"] == before["transitions"] + 2
    assert after["submitted_events"] == before["submitted_events"] + 2
    async with app.state.runtime.db.transaction() as session:
        roster = await session.get(Roster, report["roster_id"])
        assert roster is not None
        assert (roster.source, roster.filename, roster.title) == (
            "import",
            "凤庆 花名册.xlsx",
            "凤庆 花名册.xlsx 导入",
        )
        assert roster.org_id == village["id"] and roster.submitted_by == "test-user"
        imported = (
            await session.scalars(
                select(Application)
                .where(Application.roster_id == roster.id)
                .order_by(Application.form_ref)
            )
        ).all()
        assert [a.form_ref for a in imported] == [rows[0]["form_ref"], rows[-1]["form_ref"]]
        assert {a.status for a in imported} == {"on_roster"}
        assert imported[1].category == "new_employment" and imported[1].subtype == "rider"
        assert app.state.runtime.pii.decrypt(imported[0].id_number_encrypted) == id_number(1)
        assert imported[0].phone_masked == "138****0001" and imported[0].gender == "male"
        transitions = (
            await session.scalars(
                select(Transition).where(Transition.entity_id.in_([a.id for a in imported]))
            )
        ).all()
        assert {(t.from_state, t.to_state, t.actor_role) for t in transitions} == {
            (None, "on_roster", "org_chair")
        }
        payloads = (
            await session.scalars(
                select(outbox.c.aggregate_id).where(
                    outbox.c.event_type == "membership.application.submitted"
                )
            )
        ).all()
        assert set(payloads) >= {a.id for a in imported}

    again = await upload(api, village, xlsx_file(rows[:1]), dry_run=True)
    assert [e["code"] for e in again.json()["errors"]] == ["duplicate_application"]


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
async def test_clean_csv_imports_without_skipping(api: Api, app: FastAPI, encoding: str) -> None:
    _, _, village = await api.tree()
    rows = [person(10), person(11, household_type="城镇", category="职工")]
    data = csv_file(rows, encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")

    response = await upload(api, village, data, "会员名单.csv", title="2026年第一批")

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows_total"], report["rows_imported"], report["errors"]) == (2, 2, [])
    async with app.state.runtime.db.transaction() as session:
        roster = await session.get(Roster, report["roster_id"])
        assert roster is not None and roster.title == "2026年第一批"
        kinds = (
            await session.execute(
                select(Application.household_type, Application.category)
                .where(Application.roster_id == roster.id)
                .order_by(Application.form_ref)
            )
        ).all()
    assert [tuple(k) for k in kinds] == [("rural", "migrant_worker"), ("urban", "employee")]


async def test_unknown_columns_are_warnings_and_an_empty_file_writes_nothing(api: Api) -> None:
    _, _, village = await api.tree()
    data = ",".join([*HEADER, "备注"]).encode() + b"\n"

    response = await upload(api, village, data, "r.csv")

    assert response.status_code == 200
    report = response.json()
    assert report["roster_id"] is None and report["rows_total"] == 0
    assert [(w["code"], w["header"]) for w in report["warnings"]] == [("unknown_column", "备注")]


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        ("姓名,手机号码\n张三,13800138000\n".encode(), "r.csv", "missing_columns"),
        (b"a,b\n", "r.xls", "unsupported_file_type"),
        (b"PK\x03\x04 not a workbook", "r.xlsx", "unreadable_file"),
        (b"", "r.csv", "empty_file"),
    ],
)
async def test_file_errors_are_422_with_their_code(
    api: Api, data: bytes, filename: str, code: str
) -> None:
    _, _, village = await api.tree()

    response = await upload(api, village, data, filename, dry_run=True)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code and error["message_zh"]
    assert error["details"]["field"] == "file"
    if code == "missing_columns":
        missing = ["id_number", "household_type", "category", "form_ref"]
        assert error["details"]["columns"] == missing


async def test_too_large_upload_is_413(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, village = await api.tree()
    monkeypatch.setattr(app.state.runtime.settings, "roster_max_bytes", 4_000)
    chair = api.headers(Role.org_chair, village)

    # Just over the limit: read in chunks after the multipart parse, refused at 4,001 bytes.
    response = await upload(api, village, b"x" * 4_001, "r.csv")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["details"] == {"field": "file", "max_bytes": 4_000}

    # Far over it, announced by Content-Length: refused before the body is read.
    response = await upload(api, village, b"x" * 200_000, "r.csv")
    assert response.status_code == 413

    # Far over it, sent chunked without a length: cut off while it arrives.
    boundary = "rosterboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()

    async def body():  # noqa: ANN202
        yield head
        for _ in range(20):
            yield b"x" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await api.client.post(
        "/v1/rosters/import",
        params={"org_id": village["id"]},
        headers={**chair, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    # Under the limit still works.
    assert (await upload(api, village, csv_file([person(20)]), "r.csv")).status_code == 200


async def test_scope_and_rights(api: Api) -> None:
    county, township, village = await api.tree()
    data = csv_file([person(30)])

    outside = await upload(api, township, data, "r.csv", as_=api.headers(Role.org_chair, village))
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    # A government system's key that may read members (masked) but not import.
    masked_key = api.headers(
        Role.gov_system, county, scopes=sorted(scope_actions([ApiScope.members_read_masked]))
    )
    no_right = await upload(api, village, data, "r.csv", as_=masked_key)
    assert no_right.status_code == 403 and no_right.json()["error"]["code"] == "forbidden"
    missing = await api.client.post(
        "/v1/rosters/import",
        headers=api.headers(Role.county_admin, county),
        params={"org_id": "no-such-org"},
        files={"file": ("r.csv", data, "text/csv")},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "org_not_found"
    no_file = await api.client.post(
        "/v1/rosters/import", headers=api.platform, params={"org_id": village["id"]}
    )
    assert no_file.status_code == 422 and no_file.json()["error"]["code"] == "validation_error"

    county_admin = api.headers(Role.county_admin, county)
    from_county = await upload(api, village, data, "r.csv", as_=county_admin)
    assert from_county.status_code == 200 and from_county.json()["rows_imported"] == 1


async def test_dissolved_org_takes_no_import(api: Api) -> None:
    _, _, village = await api.tree()
    await api.ok("PATCH", f"/v1/orgs/{village['id']}", json={"status": "dissolved"})

    response = await upload(api, village, csv_file([person(40)]), "r.csv", dry_run=True)

    assert response.status_code == 409 and response.json()["error"]["code"] == "org_dissolved"


# ---------------------------------------------------------------- export


async def test_export_round_trip(api: Api) -> None:
    county, township, village = await api.tree()
    county_admin = api.headers(Role.county_admin, county)
    rows = [
        person(50),
        person(51, phone="0883-4212345", category="新就业形态劳动者", subtype="快递员"),
    ]
    imported = (await upload(api, village, xlsx_file(rows))).json()
    approved = await api.ok(
        "POST",
        f"/v1/rosters/{imported['roster_id']}/approve",
        as_=county_admin,
        json={"approval_doc_no": "凤工复〔2026〕12号"},
    )
    assert approved["approved"] == 2
    await api.member(county, township, **api_body(person(52)))
    gone = await api.member(county, village, **api_body(person(53)))
    gone_no = gone["member"]["member_no"]
    await api.ok(
        "POST", f"/v1/members/{gone_no}/withdraw", as_=county_admin, json={"reason": "本人申请退会"}
    )

    response = await api.client.get(
        "/v1/rosters/export", headers=county_admin, params={"org_id": township["id"]}
    )

    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="roster-')
    assert unquote(disposition.split("filename*=UTF-8''")[1]).startswith("花名册-凤山镇工会-")
    assert response.headers["x-roster-rows"] == "3"
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == [column.header for column in TEMPLATE_COLUMNS]
    codes = [c.code for c in TEMPLATE_COLUMNS]
    exported = [dict(zip(codes, row, strict=True)) for row in values[1:]]
    member_nos = [r["member_no"] for r in exported]
    assert member_nos == sorted(member_nos) and gone_no not in member_nos
    assert [r["seq"] for r in exported] == ["1", "2", "3"]
    by_name = {r["name"]: r for r in exported}
    assert set(by_name) == {"李50", "李51", "李52"}
    first, second = by_name["李50"], by_name["李51"]
    assert (first["id_number"], first["phone"]) == (id_number(50), "13800000050")
    assert (first["category"], first["household_type"]) == ("农民工", "农村")
    assert (first["form_ref"], first["org_name"]) == ("FQ-2026-00050", "京竹林村工会委员会")
    assert (second["phone"], second["category"], second["subtype"]) == (
        "+868834212345",
        "新就业形态劳动者",
        "快递员",
    )
    assert by_name["李52"]["org_name"] == "凤山镇工会"

    again = await upload(api, township, response.content, "export.xlsx", as_=county_admin)
    assert again.status_code == 422
    report = again.json()["error"]["details"]
    assert [(e["row"], e["code"]) for e in report["errors"]] == [
        (2, "already_member"),
        (3, "already_member"),
        (4, "already_member"),
    ]
    assert (report["rows_total"], report["rows_duplicate"], report["rows_valid"]) == (3, 3, 0)

    withdrawn = await api.client.get(
        "/v1/rosters/export",
        headers=county_admin,
        params={"org_id": village["id"], "format": "csv", "status": "withdrawn"},
    )
    assert withdrawn.status_code == 200 and withdrawn.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(withdrawn.content.decode("utf-8-sig"))))
    assert len(lines) == 2 and lines[1][-2] == gone_no
    assert lines[1][2] == "\t" + id_number(53)


async def test_export_masks_personal_data_without_the_right(api: Api) -> None:
    county, township, village = await api.tree()
    await api.member(county, village, **api_body(person(60)))

    response = await api.client.get(
        "/v1/rosters/export",
        headers=api.headers(Role.org_chair, village),
        params={"org_id": village["id"], "format": "csv"},
    )

    assert response.status_code == 200
    row = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1]
    assert row[2] == "\t" + id_number(60)[:6] + "********" + id_number(60)[-4:]
    assert row[3] == "\t138****0060"
    outside = await api.client.get(
        "/v1/rosters/export",
        headers=api.headers(Role.org_chair, village),
        params={"org_id": township["id"]},
    )
    assert outside.status_code == 403 and outside.json()["error"]["code"] == "out_of_scope"
    operator = await api.client.get(
        "/v1/rosters/export",
        headers=api.headers(Role.station_operator, county),
        params={"org_id": village["id"]},
    )
    assert operator.status_code == 403 and operator.json()["error"]["code"] == "forbidden"


# ---------------------------------------------------------------- volume


async def test_ten_thousand_rows_become_applications(api: Api, app: FastAPI) -> None:
    _, _, village = await api.tree()
    rows = [person(100_000 + n) for n in range(10_000)]

    response = await upload(api, village, xlsx_file(rows), "big.xlsx")

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows_total"], report["rows_imported"], report["errors"]) == (10_000, 10_000, [])
    assert len(report["preview"]) == 20
    counts = await written(app)
    assert counts == {
        "rosters": 1,
        "applications": 10_000,
        "transitions": 10_000,
        "submitted_events": 10_000,
    }
    on_roster = await count(
        app,
        select(func.count())
        .select_from(Application)
        .where(Application.roster_id == report["roster_id"], Application.status == "on_roster"),
    )
    assert on_roster == 10_000


async def test_someone_applying_during_the_import_refuses_it_whole(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the duplicate check cannot see: an application for someone on the file
    commits between the check and the writes. The one-pending-application index refuses
    the chunk that holds them, here with chunks prepared ahead still in flight."""
    _, _, village = await api.tree()
    rows = [person(700 + n) for n in range(12)]
    await api.apply(village, **api_body(rows[9]))
    before = await written(app)

    async def checked_before_they_applied(session: Any, hashes: Any) -> set[str]:
        return set()

    monkeypatch.setattr(
        rosters_repository, "pending_application_hashes", checked_before_they_applied
    )
    monkeypatch.setattr(rosters_service, "CHUNK_ROWS", 2)
    response = await upload(api, village, xlsx_file(rows))

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "roster_import_conflict"
    assert await written(app) == before  # the earlier chunks went with the transaction


async def test_a_roster_after_a_big_one_is_checked_on_fresh_statistics(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The duplicate check looks 500 hashes up at a time; planned on statistics taken
    before a big import, PostgreSQL scans the whole table for each batch instead. The next
    check analyses the tables the last import (or approval) changed a fifth of."""
    db = app.state.runtime.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite plans without gathered statistics")
    monkeypatch.setattr(db_module, "STALE_MIN_ROWS", 100)
    stats = text(
        "SELECT n_mod_since_analyze, analyze_count FROM pg_stat_user_tables"
        " WHERE relname = 'applications'"
    )
    async with db.transaction() as session:
        # Autovacuum would analyse it on its own once a minute: not while we look.
        await session.execute(text("ALTER TABLE applications SET (autovacuum_enabled = false)"))
    try:
        _, _, village = await api.tree()
        first = await upload(api, village, xlsx_file([person(900 + n) for n in range(150)]))
        assert first.status_code == 200, first.text
        for _ in range(50):  # the import's counts reach the server's statistics when idle
            async with db.reading() as session:
                changed, analysed = (await session.execute(stats)).one()
            if changed >= 150:
                break
            await asyncio.sleep(0.1)
        assert changed >= 150

        second = await upload(api, village, xlsx_file([person(2_000)]), dry_run=True)

        assert second.status_code == 200, second.text
        async with db.reading() as session:
            assert (await session.execute(stats)).one().analyze_count == analysed + 1
    finally:
        async with db.transaction() as session:
            await session.execute(text("ALTER TABLE applications RESET (autovacuum_enabled)"))
