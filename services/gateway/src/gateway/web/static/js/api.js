// The gateway's API as the page uses it: log in, keep the tokens for this tab, fetch figures.
//
// The tokens live in sessionStorage: they die with the tab, and no other tab or site sees
// them (the page's Content-Security-Policy admits no script but its own). An access token
// lives minutes; before it runs out the page renews it once with the refresh token (the
// gateway rotates refresh tokens, so two renewals must never race). When renewal is
// refused, the session has ended and the official logs in again.

const TOKEN_KEY = "gonghui.dashboard.token";
const REFRESH_KEY = "gonghui.dashboard.refresh";
const USER_KEY = "gonghui.dashboard.user"; // the username typed, to greet the official by
const SLACK_MS = 30_000; // renew this long before `exp`, so no request leaves with a dying token

/** A failed API call: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, code, message, messageZh) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.messageZh = messageZh;
  }
}

/** The claims of a JWT, read without verifying it (the server verifies; the page only reads). */
export function claims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part + "=".repeat((4 - (part.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storedUsername() {
  return sessionStorage.getItem(USER_KEY);
}

export function canRenew() {
  return Boolean(sessionStorage.getItem(REFRESH_KEY));
}

export function forgetToken() {
  for (const key of [TOKEN_KEY, REFRESH_KEY, USER_KEY]) sessionStorage.removeItem(key);
}

/** True when the token is missing, unreadable or (nearly) past its `exp`. */
export function expired(token) {
  const payload = token ? claims(token) : null;
  if (!payload || typeof payload.exp !== "number") return true;
  return payload.exp * 1000 <= Date.now() + SLACK_MS;
}

/** Milliseconds until the token should be renewed (0 when it should be now). */
export function renewIn(token) {
  const payload = token ? claims(token) : null;
  if (!payload || typeof payload.exp !== "number") return 0;
  return Math.max(0, payload.exp * 1000 - SLACK_MS - Date.now());
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  const error = body && body.error ? body.error : {};
  return new ApiError(response.status, error.code, error.message, error.message_zh);
}

async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, "network");
  }
}

/** POST /v1/auth/token (OAuth2): keeps the access and refresh tokens for this tab. */
async function tokenGrant(fields) {
  const response = await send("/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
  if (!response.ok) throw await errorFrom(response);
  const body = await response.json();
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  if (body.refresh_token) sessionStorage.setItem(REFRESH_KEY, body.refresh_token);
  else sessionStorage.removeItem(REFRESH_KEY);
  return body.access_token;
}

/** Log in with the password grant. */
export async function logIn(username, password) {
  forgetToken();
  await tokenGrant({ grant_type: "password", username, password });
  sessionStorage.setItem(USER_KEY, username);
}

let renewal = null; // the one renewal in flight, shared by every caller

/**
 * A token good for the next request: the stored one, or a renewed one. Throws ApiError 401
 * when the session has ended (nothing to renew with, or the gateway refused), 0 when offline.
 */
export async function freshToken() {
  const token = storedToken();
  if (token && !expired(token)) return token;
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh) throw new ApiError(401, "token_expired");
  renewal ??= tokenGrant({ grant_type: "refresh_token", refresh_token: refresh }).finally(() => {
    renewal = null;
  });
  try {
    return await renewal;
  } catch (error) {
    if (error instanceof ApiError && error.status === 0) throw error;
    throw new ApiError(401, "token_expired");
  }
}

/** Sign out at the gateway too (revokes the tokens of this login); best effort. */
export async function logOut() {
  const token = storedToken();
  const refresh = sessionStorage.getItem(REFRESH_KEY);
  forgetToken();
  if (!token || expired(token)) return;
  try {
    await fetch("/v1/auth/revoke", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(refresh ? { refresh_token: refresh } : {}),
    });
  } catch {
    // offline: the tokens are gone from this tab and expire on their own
  }
}

/** GET a dashboard resource as the logged-in official. */
export async function getJson(path, params = {}) {
  const token = await freshToken();
  const query = new URLSearchParams(params).toString();
  const response = await send(query ? `${path}?${query}` : path, {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
  });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

export const dashboard = {
  overview: (orgId) => getJson("/v1/dashboard/overview", { org_id: orgId }),
  children: (orgId) => getJson("/v1/dashboard/children", { org_id: orgId }),
  timeseries: (orgId, metric) => getJson("/v1/dashboard/timeseries", { org_id: orgId, metric }),
  map: (orgId) => getJson("/v1/dashboard/map", { org_id: orgId }),
};
