// The dashboard page: login, an org's overview with charts, drill-down table and map.
//
// Navigation is the URL's hash: `#/org/<id>` shows that org (the breadcrumb and the back
// button work), no hash shows the org of the token's `org_id` claim. A platform admin's token
// has no org: they type the org's ID once (#/pick); it becomes their home for this tab.

import {
  ApiError,
  canRenew,
  claims,
  dashboard,
  expired,
  forgetToken,
  freshToken,
  logIn,
  logOut,
  renewIn,
  storedToken,
  storedUsername,
} from "./api.js";
import { barChart, columnChart, rateChart } from "./charts.js";
import * as fmt from "./format.js";
import { label, language, setLanguage, t } from "./i18n.js";
import { drawMap } from "./map.js";

const LANG_KEY = "gonghui.dashboard.lang";
const HOME_KEY = "gonghui.dashboard.home"; // a platform admin's chosen org
const NAMES_KEY = "gonghui.dashboard.names"; // org id -> name, for the breadcrumb

const $ = (id) => document.getElementById(id);

const state = {
  loadSerial: 0, // only the latest load may draw
  shown: null, // the data on screen, redrawn when the language changes
  expiryTimer: null,
  loginMessage: null, // i18n key of the message over the login form
};

function element(tag, { className, text, attrs } = {}, ...children) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  for (const [key, value] of Object.entries(attrs ?? {})) el.setAttribute(key, value);
  el.append(...children);
  return el;
}

// ---- language ---------------------------------------------------------------------------

function translateStatic() {
  document.documentElement.lang = language() === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  // The toggle names the other language in that language.
  $("lang-toggle").lang = language() === "zh" ? "en" : "zh-CN";
}

function switchLanguage() {
  setLanguage(language() === "zh" ? "en" : "zh");
  localStorage.setItem(LANG_KEY, language());
  translateStatic();
  if (!$("login-view").hidden) showLogin(state.loginMessage);
  if (state.shown) drawAll(state.shown);
  showUser();
}

// ---- names for the breadcrumb -------------------------------------------------------------

function names() {
  try {
    return JSON.parse(sessionStorage.getItem(NAMES_KEY) ?? "{}");
  } catch {
    return {};
  }
}

function remember(orgs) {
  const known = names();
  for (const org of orgs) if (org.name) known[org.id] = org.name;
  sessionStorage.setItem(NAMES_KEY, JSON.stringify(known));
}

// ---- views ------------------------------------------------------------------------------

function show(view) {
  for (const id of ["login-view", "picker-view", "dashboard-view"]) $(id).hidden = id !== view;
  $("logout").hidden = view === "login-view";
}

function showUser() {
  const token = storedToken();
  const payload = token ? claims(token) : null;
  $("current-user").hidden = !payload;
  if (payload) {
    // The token's subject is an account id: greet by the username typed at login instead.
    const role = label("role", payload.role);
    $("current-user").textContent = storedUsername()
      ? t("auth.user", { name: storedUsername(), role })
      : role;
  }
}

function showLogin(messageKey) {
  state.loginMessage = messageKey;
  state.shown = null;
  show("login-view");
  showUser();
  const message = $("login-message");
  message.hidden = !messageKey;
  message.textContent = messageKey ? t(messageKey) : "";
  message.className = messageKey === "auth.logged_out" ? "notice" : "notice error";
  $("login-submit").disabled = false;
  $("login-submit").textContent = t("auth.submit");
  $("username").focus();
}

function sessionEnded() {
  forgetToken();
  clearTimeout(state.expiryTimer);
  showLogin("auth.expired");
}

/** Renew the token shortly before it expires; when it cannot be renewed, the session ends. */
function watchExpiry(token) {
  clearTimeout(state.expiryTimer);
  // setTimeout holds at most ~24.8 days; a token lives far less.
  state.expiryTimer = setTimeout(renewOrEnd, Math.min(renewIn(token), 2 ** 31 - 1));
}

async function renewOrEnd() {
  try {
    watchExpiry(await freshToken());
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 0) state.expiryTimer = setTimeout(renewOrEnd, 30_000); // offline
    else sessionEnded();
  }
}

function setStatus(key, params, { error = false, retry = false } = {}) {
  const status = $("status");
  status.hidden = !key;
  status.className = error ? "notice error" : "notice";
  $("status-text").textContent = key ? t(key, params) : "";
  $("retry").hidden = !retry;
}

// ---- routing ----------------------------------------------------------------------------

function homeOrg(payload) {
  return payload.org_id ?? sessionStorage.getItem(HOME_KEY);
}

function route() {
  const token = storedToken();
  if (!token) {
    showLogin(state.loginMessage);
    return;
  }
  if (expired(token) && !canRenew()) {
    sessionEnded();
    return;
  }
  watchExpiry(token);
  showUser();
  const payload = claims(token);
  const match = /^#\/org\/([^/?#]+)$/.exec(location.hash);
  const orgId = match ? decodeURIComponent(match[1]) : homeOrg(payload);
  if (location.hash === "#/pick" || !orgId) {
    show("picker-view");
    $("picker-org").value = sessionStorage.getItem(HOME_KEY) ?? "";
    $("picker-org").focus();
    return;
  }
  $("change-org").hidden = Boolean(payload.org_id);
  loadOrg(orgId);
}

function messageOf(error) {
  if (language() === "zh" && error.messageZh) return error.messageZh;
  return error.message;
}

async function loadOrg(orgId) {
  const serial = ++state.loadSerial;
  show("dashboard-view");
  setStatus("status.loading");
  $("retry").onclick = () => loadOrg(orgId);
  try {
    const [overview, children, personTimes, map] = await Promise.all([
      dashboard.overview(orgId),
      dashboard.children(orgId),
      dashboard.timeseries(orgId, "person_times"),
      dashboard.map(orgId),
    ]);
    if (serial !== state.loadSerial) return;
    remember([overview.org, ...children.children.map((child) => child.org)]);
    state.shown = { overview, children, personTimes, map };
    setStatus(null);
    drawAll(state.shown);
  } catch (error) {
    if (serial !== state.loadSerial) return;
    if (!(error instanceof ApiError)) throw error;
    state.shown = null;
    $("figures").hidden = true;
    if (error.status === 401) sessionEnded();
    else if (error.status === 403) setStatus("status.forbidden", {}, { error: true });
    else if (error.status === 404) setStatus("status.not_found", {}, { error: true });
    else if (error.status === 0) setStatus("status.network", {}, { error: true, retry: true });
    else setStatus("status.error", { message: messageOf(error) }, { error: true, retry: true });
  }
}

// ---- drawing ----------------------------------------------------------------------------

function orgName(org) {
  return org.name ?? t("children.unnamed");
}

function drawAll({ overview, children, personTimes, map }) {
  $("figures").hidden = false;
  drawHeader(overview);
  drawFreshness(overview);
  drawKpis(overview.figures);
  drawCharts(overview, children, personTimes);
  drawChildren(children);
  drawMap($("map"), map);
}

function drawHeader(overview) {
  const org = overview.org;
  $("org-name").textContent = orgName(org);
  $("org-type").textContent = org.org_type ? label("org_type", org.org_type) : "";
  document.title = `${orgName(org)} · ${t("app.title")}`;

  // The breadcrumb runs from the official's home org down to this one, along the org's path.
  const ids = org.path.split("/").filter(Boolean);
  const payload = claims(storedToken()) ?? {};
  const home = homeOrg(payload);
  const start = home && ids.includes(home) ? ids.indexOf(home) : ids.length - 1;
  const known = names();
  const list = element("ol");
  ids.slice(start).forEach((id, index, trail) => {
    const name = id === org.id ? orgName(org) : known[id] ?? `${id.slice(0, 8)}…`;
    const last = index === trail.length - 1;
    const item = last
      ? element("span", { text: name, attrs: { "aria-current": "page" } })
      : element("a", { text: name, attrs: { href: `#/org/${encodeURIComponent(id)}` } });
    list.append(element("li", {}, item));
  });
  $("breadcrumb").replaceChildren(list);
}

function drawFreshness(overview) {
  const items = overview.freshness.map((source) => {
    const name = t(`freshness.source.${source.source}`);
    const text = source.last_event_at
      ? t("freshness.as_of", { source: name, time: fmt.dateTime(source.last_event_at) })
      : t("freshness.none", { source: name });
    return element("li", {
      className: source.last_event_at ? "" : "stale",
      text,
      attrs: { "data-source": source.source },
    });
  });
  items.push(
    element("li", { className: "meta", text: t("freshness.period_all") }),
    element("li", {
      className: "meta",
      text: t("freshness.generated", { time: fmt.dateTime(overview.generated_at) }),
    }),
  );
  $("freshness").replaceChildren(...items);
}

function kpi(key, labelKey, value, detail) {
  return element(
    "div",
    { className: "kpi", attrs: { "data-kpi": key } },
    element("div", { className: "kpi-label", text: t(labelKey) }),
    element("div", { className: "kpi-value", text: value }),
    element("div", { className: "kpi-detail", text: detail ?? "" }),
  );
}

function drawKpis(figures) {
  const { units, members, cadres, training, stations } = figures;
  const level = units.direct.level ? t(`level.${units.direct.level}`) : t("level.none");
  $("kpis").replaceChildren(
    kpi("members.active", "kpi.members", fmt.number(members.active)),
    kpi("members.migrant_workers", "kpi.migrant_workers", fmt.number(members.migrant_workers)),
    kpi("members.new_employment", "kpi.new_employment", fmt.number(members.new_employment)),
    kpi("members.new_members", "kpi.new_members", fmt.number(members.new_members)),
    kpi(
      "units.rate",
      "kpi.unit_coverage",
      fmt.percent(units.direct.rate),
      t("kpi.unit_coverage_detail", {
        covered: fmt.number(units.direct.covered),
        total: fmt.number(units.direct.total),
        level,
      }),
    ),
    kpi(
      "cadres.cadres",
      "kpi.cadres",
      fmt.number(cadres.cadres),
      t("kpi.cadres_detail", { rate: fmt.percent(cadres.rate) }),
    ),
    kpi(
      "training.sessions_completed",
      "kpi.sessions",
      fmt.number(training.sessions_completed),
      t("kpi.sessions_detail", {
        scheduled: fmt.number(training.sessions_scheduled),
        cancelled: fmt.number(training.sessions_cancelled),
      }),
    ),
    kpi("training.person_times", "kpi.person_times", fmt.number(training.person_times)),
    kpi("training.unique_persons", "kpi.unique_persons", fmt.number(training.unique_persons)),
    kpi(
      "training.certificates",
      "kpi.certificates",
      fmt.number(training.certificates),
      t("kpi.certificates_detail", {
        issued: fmt.number(training.certificates_issued),
        revoked: fmt.number(training.certificates_revoked),
      }),
    ),
    kpi("training.budget_spent", "kpi.budget_spent", fmt.yuan(training.budget_spent)),
    kpi(
      "stations.active",
      "kpi.stations",
      fmt.number(stations.active),
      t("kpi.stations_detail", { total: fmt.number(stations.total) }),
    ),
    kpi(
      "stations.circle.rate",
      "kpi.circle",
      fmt.percent(stations.circle.rate),
      t("kpi.circle_detail", {
        covered: fmt.number(stations.circle.covered),
        located: fmt.number(stations.circle.units_located),
      }),
    ),
    kpi(
      "stations.visits",
      "kpi.visits",
      fmt.number(stations.visits),
      t("kpi.visits_detail", { services: fmt.number(stations.services_used) }),
    ),
    kpi("stations.subsidies_paid", "kpi.subsidies", fmt.yuan(stations.subsidies_paid)),
  );
}

function drawCharts(overview, children, personTimes) {
  const categories = overview.figures.members.by_category;
  const total = categories.reduce((sum, item) => sum + item.count, 0);
  barChart(
    $("chart-categories"),
    categories.map((item) => ({
      key: item.key,
      label: label("category", item.key, item.label_zh),
      value: item.count,
    })),
    {
      ariaLabel: t("chart.members_by_category"),
      emptyText: t("status.no_data"),
      valueText: (item) =>
        t("chart.count_share", {
          count: fmt.number(item.value),
          share: fmt.percent(total ? item.value / total : null),
        }),
      titleText: (item) => `${item.label}: ${fmt.number(item.value)}`,
    },
  );

  columnChart($("chart-person-times"), personTimes.points, {
    ariaLabel: t("chart.person_times"),
    emptyText: t("status.no_data"),
    valueText: (value) => fmt.number(value),
    titleText: (point) => `${fmt.month(point.month)}: ${fmt.number(point.value)}`,
    monthLabel: (month, short) => fmt.month(month, short),
  });

  rateChart(
    $("chart-coverage"),
    children.children.map((child) => ({
      key: child.org.id,
      label: orgName(child.org),
      values: [child.figures.units.direct.rate, child.figures.stations.circle.rate],
    })),
    [{ name: t("chart.coverage.units") }, { name: t("chart.coverage.circle") }],
    {
      ariaLabel: t("chart.coverage"),
      emptyText: t("chart.no_children"),
      valueText: (rate) => fmt.percent(rate),
      width: 1160, // the chart spans both columns: the same text size as its neighbours
    },
  );
}

function drawChildren(children) {
  const rows = children.children.map((child) => {
    const { org, figures } = child;
    const href = `#/org/${encodeURIComponent(org.id)}`;
    const cells = [
      [fmt.number(figures.members.active), "members.active"],
      [fmt.number(figures.members.migrant_workers), "members.migrant_workers"],
      [fmt.percent(figures.units.direct.rate), "units.rate"],
      [fmt.number(figures.training.person_times), "training.person_times"],
      [fmt.number(figures.training.certificates), "training.certificates"],
      [fmt.number(figures.stations.active), "stations.active"],
      [fmt.percent(figures.stations.circle.rate), "stations.circle.rate"],
    ].map(([text, key]) => element("td", { className: "num", text, attrs: { "data-col": key } }));
    const row = element(
      "tr",
      { attrs: { "data-org-id": org.id, tabindex: "0" } },
      element("th", { attrs: { scope: "row" } }, element("a", { text: orgName(org), attrs: { href } })),
      element("td", { text: org.org_type ? label("org_type", org.org_type) : "" }),
      ...cells,
    );
    row.addEventListener("click", (event) => {
      if (!(event.target instanceof HTMLAnchorElement)) location.hash = href;
    });
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === row) location.hash = href;
    });
    return row;
  });
  $("children-rows").replaceChildren(...rows);
  $("children-table").hidden = rows.length === 0;
  $("children-empty").hidden = rows.length !== 0;
}

// ---- start ------------------------------------------------------------------------------

async function onLogin(event) {
  event.preventDefault();
  const submit = $("login-submit");
  submit.disabled = true;
  submit.textContent = t("auth.signing_in");
  try {
    await logIn($("username").value.trim(), $("password").value);
    $("password").value = "";
    state.loginMessage = null;
    $("login-message").hidden = true;
    route();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const key =
      error.status === 0 ? "status.network" : error.status < 500 ? "auth.failed" : null;
    showLogin(key);
    if (!key) {
      $("login-message").hidden = false;
      $("login-message").textContent = t("status.error", { message: messageOf(error) });
    }
  }
}

function onPick(event) {
  event.preventDefault();
  const orgId = $("picker-org").value.trim();
  if (!orgId) return;
  sessionStorage.setItem(HOME_KEY, orgId);
  const target = `#/org/${encodeURIComponent(orgId)}`;
  if (location.hash === target) route();
  else location.hash = target;
}

async function onLogout() {
  clearTimeout(state.expiryTimer);
  sessionStorage.removeItem(HOME_KEY);
  history.replaceState(null, "", location.pathname);
  const revoked = logOut(); // forgets the tokens at once, then tells the gateway
  showLogin("auth.logged_out");
  await revoked;
}

function start() {
  setLanguage(localStorage.getItem(LANG_KEY) ?? "zh");
  translateStatic();
  $("lang-toggle").addEventListener("click", switchLanguage);
  $("logout").addEventListener("click", onLogout);
  $("login-form").addEventListener("submit", onLogin);
  $("picker-form").addEventListener("submit", onPick);
  window.addEventListener("hashchange", route);
  route();
}

start();
