"""The dashboard page in a real Chromium, against the real gateway and a known county.

The figures asserted here are worked out from the county's events (see `publish_county`),
not read back from the API. Screenshots go to `.screenshots/` at the repository root.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gonghui_shared.auth import Principal, TokenIssuer
from gonghui_shared.permissions import Role
from gonghui_shared.runtime import load_jwt_private_key
from gonghui_shared.testing import token_for

if TYPE_CHECKING:
    from conftest import County, LiveGateway, Official
    from playwright.async_api import Browser, Page

TOKEN_KEY = "gonghui.dashboard.token"


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of the test's page (a CSP violation is one)."""
    return []


@pytest.fixture
async def page(browser: Browser, console_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
        device_scale_factor=1,
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()


def county_admin_token(gateway: LiveGateway, county: County) -> str:
    org = county.orgs["county"]
    return token_for(gateway.settings, Role.county_admin, org_id=org["id"], org_path=org["path"])


async def open_logged_in(page: Page, gateway: LiveGateway, token: str) -> None:
    """Open the page with `token` in the tab's sessionStorage, as the login form leaves it."""
    await page.goto(f"{gateway.base}/dashboard/")
    await page.evaluate("([key, token]) => sessionStorage.setItem(key, token)", [TOKEN_KEY, token])
    await page.reload()


async def log_in(page: Page, gateway: LiveGateway, username: str, password: str) -> None:
    """Open the page and sign in through its form."""
    await page.goto(f"{gateway.base}/dashboard/")
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password)
    await page.locator("#login-submit").click()


async def kpi(page: Page, key: str) -> str:
    locator = page.locator(f'[data-kpi="{key}"] .kpi-value')
    await locator.wait_for()
    return (await locator.inner_text()).strip()


async def kpi_detail(page: Page, key: str) -> str:
    return (await page.locator(f'[data-kpi="{key}"] .kpi-detail').inner_text()).strip()


async def child_cell(page: Page, org_id: str, column: str) -> str:
    cell = page.locator(f'#children-rows tr[data-org-id="{org_id}"] td[data-col="{column}"]')
    return (await cell.inner_text()).strip()


async def coverage_rates(page: Page, org_id: str) -> list[str]:
    """The two figures the coverage chart writes for a child: union and circle coverage."""
    row = page.locator(f'#chart-coverage g.rate-row[data-key="{org_id}"]')
    return [text.strip() for text in await row.locator("g[data-series] > text").all_text_contents()]


async def test_an_official_logs_in_and_sees_the_county_figures(
    page: Page,
    live_gateway: LiveGateway,
    county: County,
    official: Official,
    screenshots: Path,
    console_errors: list[str],
) -> None:
    """Log in; the overview of 凤庆县总工会: KPIs, the three charts, each source's freshness."""
    from playwright.async_api import expect

    await log_in(page, live_gateway, official.username, official.password)
    await expect(page.locator("#org-name")).to_have_text("凤庆县总工会")
    await expect(page.locator("#current-user")).to_have_text("当前用户：fengqing（县总工会管理员）")

    # 11 members: 6 migrant workers, 2 new-employment workers, 2 employees, 1 other.
    assert await kpi(page, "members.active") == "11"
    assert await kpi(page, "members.migrant_workers") == "6"
    assert await kpi(page, "members.new_employment") == "2"
    assert await kpi(page, "members.new_members") == "11"
    # 2 of the 3 townships of the region have a union.
    assert await kpi(page, "units.rate") == "66.7%"
    assert await kpi_detail(page, "units.rate") == "2 / 3 个乡镇已建会"
    # 2 cadres, 1 of whom attended the cadre course.
    assert await kpi(page, "cadres.cadres") == "2"
    assert await kpi_detail(page, "cadres.cadres") == "干部培训覆盖率 50%"
    # 3 persons x 2 days + 2 persons x 1 day; 5 distinct persons; 3 certificates.
    assert await kpi(page, "training.sessions_completed") == "2"
    assert await kpi(page, "training.person_times") == "8"
    assert await kpi(page, "training.unique_persons") == "5"
    assert await kpi(page, "training.certificates") == "3"
    assert await kpi(page, "training.budget_spent") == "¥1,734.50"
    # 3 stations, 1 suspended; 3 of the 4 village unions within 1,125 m of an open one.
    assert await kpi(page, "stations.active") == "2"
    assert await kpi_detail(page, "stations.active") == "共 3 个驿站"
    assert await kpi(page, "stations.circle.rate") == "75%"
    assert await kpi(page, "stations.visits") == "4"
    assert await kpi_detail(page, "stations.visits") == "服务项次 6"
    assert await kpi(page, "stations.subsidies_paid") == "¥100.00"

    # Members by category: one bar per category with its count.
    bars = page.locator("#chart-categories g.bar-row")
    values = {
        await bar.get_attribute("data-key"): await bar.get_attribute("data-value")
        for bar in await bars.all()
    }
    assert values == {"migrant_worker": "6", "new_employment": "2", "employee": "2", "other": "1"}
    await expect(page.locator('#chart-categories g[data-key="migrant_worker"]')).to_contain_text(
        "6（54.5%）"
    )
    # Person-times per month: 6 last month, 2 this month.
    columns = page.locator("#chart-person-times g.column")
    months = {
        await col.get_attribute("data-month"): await col.get_attribute("data-value")
        for col in await columns.all()
    }
    assert months[county.last_month] == "6"
    assert months[county.this_month] == "2"
    assert sum(int(v or 0) for v in months.values()) == 8
    # Coverage per township: union coverage and 15-minute circle coverage.
    fengshan, mengyou = county.orgs["fengshan"]["id"], county.orgs["mengyou"]["id"]
    coverage = page.locator("#chart-coverage")
    await expect(coverage.locator(f'g.rate-row[data-key="{fengshan}"]')).to_contain_text(
        "凤山镇工会"
    )
    assert await coverage_rates(page, fengshan) == ["66.7%", "50%"]
    assert await coverage_rates(page, mengyou) == ["100%", "100%"]

    # Freshness: every source has applied events, each with its time.
    for source, name in (("membership", "会员"), ("training", "培训"), ("stations", "驿站")):
        item = page.locator(f'#freshness li[data-source="{source}"]')
        await expect(item).to_have_text(re.compile(rf"^{name}数据截至 \d{{4}}/\d{{2}}/\d{{2}} "))

    await page.screenshot(path=screenshots / "dashboard-overview.png", full_page=True)
    assert console_errors == []


async def test_drilling_down_into_a_township_and_back(
    page: Page,
    live_gateway: LiveGateway,
    county: County,
    screenshots: Path,
    console_errors: list[str],
) -> None:
    """Click 凤山镇工会 in the table: its own figures and villages; the breadcrumb goes back."""
    from playwright.async_api import expect

    await open_logged_in(page, live_gateway, county_admin_token(live_gateway, county))
    fengshan, mengyou = county.orgs["fengshan"], county.orgs["mengyou"]
    await expect(page.locator(f'#children-rows tr[data-org-id="{fengshan["id"]}"]')).to_be_visible()
    # The table's figures for both townships.
    assert await child_cell(page, fengshan["id"], "members.active") == "7"
    assert await child_cell(page, fengshan["id"], "members.migrant_workers") == "4"
    assert await child_cell(page, fengshan["id"], "units.rate") == "66.7%"
    assert await child_cell(page, fengshan["id"], "training.person_times") == "6"
    assert await child_cell(page, mengyou["id"], "members.active") == "4"
    assert await child_cell(page, mengyou["id"], "training.certificates") == "0"
    assert await child_cell(page, mengyou["id"], "stations.circle.rate") == "100%"

    # A click anywhere on the row (here: the members cell) opens the township.
    await page.locator(
        f'#children-rows tr[data-org-id="{fengshan["id"]}"] td[data-col="members.active"]'
    ).click()
    await expect(page.locator("#org-name")).to_have_text("凤山镇工会")
    assert page.url.endswith(f"#/org/{fengshan['id']}")
    await expect(page.locator('[data-kpi="members.active"] .kpi-value')).to_have_text("7")
    assert await kpi(page, "members.migrant_workers") == "4"
    assert await kpi(page, "members.new_employment") == "2"
    assert await kpi(page, "training.person_times") == "6"
    assert await kpi(page, "training.unique_persons") == "3"
    assert await kpi(page, "training.budget_spent") == "¥1,234.50"
    assert await kpi(page, "stations.circle.rate") == "50%"
    assert await kpi_detail(page, "units.rate") == "2 / 3 个村（社区）已建会"
    # Its children are the two village unions.
    rows = page.locator("#children-rows tr")
    await expect(rows).to_have_count(2)
    dongcheng, jingzhulin = county.orgs["dongcheng"]["id"], county.orgs["jingzhulin"]["id"]
    assert await child_cell(page, dongcheng, "members.active") == "4"
    assert await child_cell(page, jingzhulin, "members.active") == "3"
    assert await child_cell(page, jingzhulin, "stations.circle.rate") == "0%"
    await expect(page.locator("#breadcrumb li")).to_have_text(["凤庆县总工会", "凤山镇工会"])
    await page.screenshot(path=screenshots / "dashboard-drilldown.png", full_page=True)

    # The breadcrumb leads back to the county.
    await page.locator("#breadcrumb a", has_text="凤庆县总工会").click()
    await expect(page.locator("#org-name")).to_have_text("凤庆县总工会")
    await expect(page.locator('[data-kpi="members.active"] .kpi-value')).to_have_text("11")
    assert console_errors == []


async def test_the_map_shows_stations_circles_and_villages(
    page: Page,
    live_gateway: LiveGateway,
    county: County,
    screenshots: Path,
    console_errors: list[str],
) -> None:
    """3 stations (1 suspended, so 2 circles of 1,125 m to scale), 4 villages (3 covered)."""
    from playwright.async_api import expect

    await open_logged_in(page, live_gateway, county_admin_token(live_gateway, county))
    svg = page.locator("#map svg.map")
    await expect(svg).to_be_visible()
    await expect(svg.locator("g.station-point")).to_have_count(3)
    await expect(svg.locator("g.station-point.inactive")).to_have_count(1)
    circles = svg.locator("circle.service-circle")
    await expect(circles).to_have_count(2)
    await expect(svg.locator("g.village-point.covered")).to_have_count(3)
    await expect(svg.locator("g.village-point.uncovered")).to_have_count(1)
    # Hover text names the places.
    await expect(svg.locator("g.village-point.uncovered title")).to_contain_text(
        "京竹林村工会委员会"
    )
    await expect(svg.locator("g.station-point.inactive title")).to_contain_text("京竹林服务点")
    # The circles have the true radius: 1,125 m at the map's own scale, as does the scale bar.
    pixels_per_metre = float(await svg.get_attribute("data-pixels-per-metre") or "nan")
    for circle in await circles.all():
        radius = float(await circle.get_attribute("r") or "nan")
        assert radius / pixels_per_metre == pytest.approx(1125.0, rel=1e-3)
    scale = svg.locator("g.scale-bar")
    metres = int(await scale.get_attribute("data-metres") or 0)
    assert metres > 0
    assert await scale.locator("text").text_content() in (f"{metres} 米", f"{metres // 1000} 公里")
    await expect(page.locator("#map .map-legend li")).to_have_count(5)

    await page.locator("#map-card").screenshot(path=screenshots / "dashboard-map.png")
    assert console_errors == []


async def test_the_interface_switches_to_english(
    page: Page,
    live_gateway: LiveGateway,
    county: County,
    screenshots: Path,
    console_errors: list[str],
) -> None:
    """Chinese first; the toggle gives English labels over the same figures, and stays."""
    from playwright.async_api import expect

    await open_logged_in(page, live_gateway, county_admin_token(live_gateway, county))
    label = page.locator('[data-kpi="members.active"] .kpi-label')
    await expect(label).to_have_text("会员总数")
    await page.locator("#lang-toggle").click()
    await expect(label).to_have_text("Members")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("figcaption").first).to_have_text("Members by category")
    await expect(page.locator('#chart-categories g[data-key="migrant_worker"]')).to_contain_text(
        "Migrant workers"
    )
    assert await kpi(page, "members.active") == "11"
    assert await kpi(page, "training.budget_spent") == "¥1,734.50"
    await page.screenshot(path=screenshots / "dashboard-overview-en.png", full_page=True)
    await page.reload()  # the choice is remembered
    await expect(label).to_have_text("Members")
    assert console_errors == []


async def test_an_expired_or_refused_token_goes_back_to_the_login_form(
    page: Page, live_gateway: LiveGateway, county: County
) -> None:
    """Past its `exp` the page does not even ask; a token the gateway refuses (401) ends too."""
    from playwright.async_api import expect

    org = county.orgs["county"]
    principal = Principal(
        subject="official", role=Role.county_admin, org_id=org["id"], org_path=org["path"]
    )
    expired = TokenIssuer(load_jwt_private_key(live_gateway.settings)).issue(principal, -60)
    await open_logged_in(page, live_gateway, expired)
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#login-message")).to_have_text("登录已过期，请重新登录。")
    assert await page.evaluate("key => sessionStorage.getItem(key)", TOKEN_KEY) is None

    # Signed by a key the gateway does not know: it looks valid to the page, not to the API.
    forged = TokenIssuer(Ed25519PrivateKey.generate()).issue(principal)
    await open_logged_in(page, live_gateway, forged)
    await expect(page.locator("#login-view")).to_be_visible()
    await expect(page.locator("#login-message")).to_have_text("登录已过期，请重新登录。")
    await expect(page.locator("#dashboard-view")).to_be_hidden()


async def test_a_wrong_password_is_refused_and_signing_out_ends_the_session(
    page: Page, live_gateway: LiveGateway, county: County, official: Official
) -> None:
    """A wrong password keeps the form; signing out revokes the tokens at the gateway."""
    from playwright.async_api import expect

    await log_in(page, live_gateway, official.username, "not-the-password")
    await expect(page.locator("#login-message")).to_have_text("用户名或密码不正确。")
    await expect(page.locator("#dashboard-view")).to_be_hidden()

    await page.locator("#password").fill(official.password)
    await page.locator("#login-submit").click()
    await expect(page.locator('[data-kpi="members.active"] .kpi-value')).to_have_text("11")
    token = await page.evaluate("key => sessionStorage.getItem(key)", TOKEN_KEY)
    assert token

    async with page.expect_response("**/v1/auth/revoke") as revoked:
        await page.locator("#logout").click()
    assert (await revoked.value).status == 204
    await expect(page.locator("#login-message")).to_have_text("您已退出登录。")
    assert await page.evaluate("key => sessionStorage.getItem(key)", TOKEN_KEY) is None
    # The token the page held no longer opens the dashboard API.
    org_id = county.orgs["county"]["id"]
    response = await page.request.get(
        f"{live_gateway.base}/v1/dashboard/overview?org_id={org_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 401


async def test_an_expiring_token_is_renewed_with_the_refresh_token(
    page: Page, live_gateway: LiveGateway, county: County, official: Official
) -> None:
    """Access tokens live minutes: the page renews one silently instead of logging out."""
    from playwright.async_api import expect

    await log_in(page, live_gateway, official.username, official.password)
    await expect(page.locator('[data-kpi="members.active"] .kpi-value')).to_have_text("11")
    org = county.orgs["county"]
    principal = Principal(
        subject="official", role=Role.county_admin, org_id=org["id"], org_path=org["path"]
    )
    expired = TokenIssuer(load_jwt_private_key(live_gateway.settings)).issue(principal, -60)
    await page.evaluate(
        "([key, token]) => sessionStorage.setItem(key, token)", [TOKEN_KEY, expired]
    )
    await page.reload()
    await expect(page.locator('[data-kpi="members.active"] .kpi-value')).to_have_text("11")
    renewed = await page.evaluate("key => sessionStorage.getItem(key)", TOKEN_KEY)
    assert renewed and renewed != expired


async def test_a_platform_admin_without_an_org_chooses_one(
    page: Page, live_gateway: LiveGateway, county: County, console_errors: list[str]
) -> None:
    """A token with no org claim asks for the org's ID, then shows that org."""
    from playwright.async_api import expect

    token = token_for(live_gateway.settings, Role.platform_admin)
    await open_logged_in(page, live_gateway, token)
    await expect(page.locator("#picker-view")).to_be_visible()
    await page.locator("#picker-org").fill(county.orgs["mengyou"]["id"])
    await page.locator("#picker-view button[type=submit]").click()
    await expect(page.locator("#org-name")).to_have_text("勐佑镇工会")
    await expect(page.locator('[data-kpi="members.active"] .kpi-value')).to_have_text("4")
    await expect(page.locator("#change-org")).to_be_visible()
    assert console_errors == []
