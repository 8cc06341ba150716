"""The `gonghui-membership` CLI, run in-process against the test database."""

from __future__ import annotations

import asyncio
import gc
import io
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import func, select
from stdnum.cn import ric

from membership.admissions.models import Application, Roster
from membership.audit.models import Transition
from membership.base import outbox
from membership.cli import main
from membership.config import MembershipSettings
from membership.rosters.template import write_roster_csv
from membership.testing import Api
from membership.units.models import AdminUnit


def id_number(n: int) -> str:
    first17 = f"53092119850101{2 * n + 1:03d}"
    return first17 + ric.calc_check_digit(first17 + "0")  # it skips the check digit slot


def person(n: int, **overrides: str) -> dict[str, str]:
    row = {
        "name": f"王{n}",
        "id_number": id_number(n),
        "phone": f"139{n:08d}",
        "household_type": "农村",
        "category": "农民工",
        "form_ref": f"CLI-{n:04d}",
    }
    row.update(overrides)
    return row


def roster_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        write_roster_csv(rows, out)
    return path


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: MembershipSettings) -> None:
    """The CLI builds its own settings from the environment: point it at the test database."""
    monkeypatch.setenv("MEMBERSHIP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("GONGHUI_DATA_DIR", str(settings.data_dir))


async def run(*argv: str) -> int:
    # main() runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(main, list(argv))


async def scalar(app: FastAPI, query: Any) -> Any:
    async with app.state.runtime.db.transaction() as session:
        return await session.scalar(query)


@pytest.mark.usefixtures("cli_env")
async def test_import_roster(
    api: Api, app: FastAPI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, village = await api.tree()
    bad = roster_csv(
        tmp_path / "花名册.csv",
        [person(1), person(2, phone="12345"), person(3), person(4, id_number=id_number(1))],
    )
    applications = select(func.count()).select_from(Application)

    assert await run("import-roster", str(bad), "--org-id", village["id"], "--dry-run") == 1
    output = capsys.readouterr().out
    assert "4 rows: 2 valid, 1 invalid, 1 duplicate" in output
    assert "row      3  phone" in output and "row      5  id_number" in output
    assert "dry run: nothing written" in output

    assert await run("import-roster", str(bad), "--org-id", village["id"]) == 1
    assert "refused: nothing written" in capsys.readouterr().out
    assert await scalar(app, applications) == 0

    code = await run(
        "import-roster",
        str(bad),
        "--org-id",
        village["id"],
        "--skip-invalid",
        "--title",
        "命令行导入",
        "--actor",
        "cli:tester",
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "imported 2 applications onto roster" in captured.out
    assert "writing" in captured.err  # the progress bar
    roster = await scalar(app, select(Roster))
    assert (roster.title, roster.source, roster.filename, roster.submitted_by) == (
        "命令行导入",
        "import",
        "花名册.csv",
        "cli:tester",
    )
    assert await scalar(app, applications.where(Application.status == "on_roster")) == 2
    actors = await scalar(
        app,
        select(func.count())
        .select_from(Transition)
        .where(Transition.actor == "cli:tester", Transition.actor_role == "platform_admin"),
    )
    assert actors == 2
    events = (
        select(func.count())
        .select_from(outbox)
        .where(outbox.c.event_type == "membership.application.submitted")
    )
    assert await scalar(app, events) == 2

    # The same people again: now pending applications, reported as duplicates.
    clean = roster_csv(tmp_path / "again.csv", [person(1), person(3)])
    assert await run("import-roster", str(clean), "--org-id", village["id"], "--dry-run") == 1
    assert capsys.readouterr().out.count("duplicate_application") == 2


@pytest.mark.usefixtures("cli_env")
async def test_usage_and_file_errors_exit_2(
    api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, village = await api.tree()
    good = roster_csv(tmp_path / "r.csv", [person(7)])

    assert await run("import-roster", str(good)) == 2  # no --org-id
    assert "--org-id" in capsys.readouterr().err
    assert await run("import-roster", str(tmp_path / "missing.csv"), "--org-id", village["id"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert await run("import-roster", str(good), "--org-id", "no-such-org") == 2
    assert "(org_not_found)" in capsys.readouterr().err
    headless = tmp_path / "r.xls"
    headless.write_bytes(b"a,b\n")
    assert await run("import-roster", str(headless), "--org-id", village["id"]) == 2
    assert "(unsupported_file_type)" in capsys.readouterr().err
    missing = tmp_path / "cols.csv"
    missing.write_text("姓名,手机号码\n张三,13800138000\n", encoding="utf-8")
    assert await run("import-roster", str(missing), "--org-id", village["id"]) == 2
    assert "(missing_columns)" in capsys.readouterr().err
    assert await run("no-such-command") == 2
    assert await run("--help") == 0
    assert "needs no NATS" in capsys.readouterr().out


@pytest.mark.usefixtures("cli_env")
async def test_export_roster(api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    county, _, village = await api.tree()
    await api.member(county, village, name="赵一", id_number=id_number(20), phone="13900000020")
    out = tmp_path / "export.xlsx"

    assert await run("export-roster", "--org-id", county["id"], "--out", str(out)) == 0
    assert "wrote 1 members" in capsys.readouterr().out
    sheet = load_workbook(io.BytesIO(out.read_bytes())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][1:4] == ("赵一", id_number(20), "13900000020")

    masked = tmp_path / "masked.csv"
    assert (
        await run("export-roster", "--org-id", county["id"], "--out", str(masked), "--masked") == 0
    )
    assert "\t139****0020" in masked.read_text(encoding="utf-8-sig")


@pytest.mark.usefixtures("cli_env")
async def test_import_units(
    app: FastAPI, api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units = tmp_path / "units.csv"
    units.write_text(
        "统计用区划代码,城乡分类代码,名称\n"
        "530921000000,,凤庆县\n"
        "530921101000,,凤山镇\n"
        "530921101201,220,京竹林村\n",
        encoding="utf-8",
    )

    assert await run("import-units", str(units)) == 0
    assert "3 units: 3 created, 0 updated, 0 unchanged" in capsys.readouterr().out
    assert await run("import-units", str(units)) == 0
    assert "0 created, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert await scalar(app, select(func.count()).select_from(AdminUnit)) == 3

    units.write_text("统计用区划代码,名称\n123,坏代码\n", encoding="utf-8")
    assert await run("import-units", str(units)) == 2
    assert "invalid_units_file" in capsys.readouterr().err


def test_a_command_runs_with_the_start_up_heap_frozen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As a service: a 100,000-row import's full collections walk only what it made."""
    gc.unfreeze()  # whatever this test process froze before (a test app's start-up)
    frozen: list[int] = []

    async def command(args: Any) -> int:
        frozen.append(gc.get_freeze_count())
        return 0

    monkeypatch.setattr("membership.cli._import_roster", command)
    assert main(["import-roster", str(tmp_path / "花名册.csv"), "--org-id", "x"]) == 0
    assert frozen and frozen[0] > 10_000
    assert gc.get_freeze_count() == 0
