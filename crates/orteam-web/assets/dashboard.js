// orteam dashboard: signs in with single sign-on (an HttpOnly session cookie the gateway sets;
// GET /auth/session says who) or with a token or member key (kept in sessionStorage), then polls
// GET /admin/v1/dashboard every 2 s and renders it. What it shows is what the gateway lets the
// caller see: a member's own figures only. Data goes into the page with textContent
// only; the charts are SVG drawn by the gateway (plotters), parsed as SVG and imported.
// Money arrives as exact decimal strings and is only ever rounded as text (see usd()).
"use strict";

const TOKEN_KEY = "orteam.adminToken";
const POLL_MS = 2000;
const SNAPSHOT = "/admin/v1/dashboard";

const state = { by: "member", range: "1h", timer: null, seen: new Set(), refreshes: 0, busy: false,
  session: null, who: null };
const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- formatting (exact)

/** Rounds a decimal string half away from zero to `places` digits, as text: "$0.0012". */
function usd(s, places) {
  if (s === null || s === undefined) return "–";
  let t = String(s);
  const neg = t.startsWith("-");
  if (neg) t = t.slice(1);
  if (places === undefined) places = adaptivePlaces(t);
  const [whole, frac = ""] = t.split(".");
  const padded = (frac + "0".repeat(places + 1)).slice(0, places + 1);
  const scale = 10n ** BigInt(places);
  let units = BigInt(whole || "0") * scale + BigInt(padded.slice(0, places) || "0");
  if (padded[places] >= "5") units += 1n;
  const digits = units.toString().padStart(places + 1, "0");
  const body = places ? digits.slice(0, -places) + "." + digits.slice(-places) : digits;
  return (neg ? "-$" : "$") + body;
}

/** Money::usd's rule (orteam-core): cents; below $1
 * as many more places as it takes for up to three significant digits, never more than the exact
 * amount has. */
function adaptivePlaces(t) {
  const [whole, frac = ""] = t.split(".");
  const digits = frac.replace(/0+$/, "");
  if (BigInt(whole || "0") >= 1n || digits === "") return 2;
  const first = digits.search(/[1-9]/) + 1;
  return Math.max(2, Math.min(first + 2, digits.length));
}

function time(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "").slice(0, 16) : "–";
}

function clock(iso) {
  return iso ? iso.slice(11, 19) : "–";
}

function until(iso) {
  if (!iso) return "";
  const ms = Date.parse(iso) - Date.now();
  if (ms <= 0) return "now";
  const h = Math.floor(ms / 3600000), m = Math.floor((ms % 3600000) / 60000);
  return h >= 48 ? `in ${Math.floor(h / 24)} d` : h > 0 ? `in ${h} h ${m} min` : `in ${m} min`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function pill(text) {
  return el("span", { class: "pill " + String(text).split(" ")[0] }, text);
}

// ---------------------------------------------------------------- auth and polling

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** GET `url` as the signed-in caller: the token if one was entered, else the session cookie. */
async function getJson(url, tok) {
  const res = await fetch(url, {
    headers: tok ? { Authorization: `Bearer ${tok}` } : {},
    credentials: "same-origin",
    cache: "no-store",
  });
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  return { res, body };
}

function fetchSnapshot(tok) {
  const q = new URLSearchParams({ range: state.range, by: state.by, charts: "svg" });
  return getJson(`${SNAPSHOT}?${q}`, tok);
}

function signedIn() {
  return Boolean(token() || state.session);
}

function serverMessage(body) {
  return body && body.error && body.error.message ? body.error.message : "";
}

function showLogin(message) {
  stopPolling();
  $("dash").hidden = true;
  $("logout").hidden = true;
  $("whoami").hidden = true;
  $("login").hidden = false;
  setStatus("", "");
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  $("token").focus();
}

function refusedMessage(res, body) {
  const detail = serverMessage(body);
  return `The gateway refused this admin token (HTTP ${res.status}). Enter the ORTEAM_ADMIN_TOKEN ` +
    `the gateway was started with.` + (detail ? ` Gateway says: ${detail}` : "");
}

async function signIn(ev) {
  ev.preventDefault();
  const tok = $("token").value.trim();
  if (!tok) return;
  $("login-submit").disabled = true;
  try {
    const { res, body } = await fetchSnapshot(tok);
    if (res.status === 401 || res.status === 403) {
      showLogin(refusedMessage(res, body));
      $("token").select();
      return;
    }
    if (!res.ok || !body) {
      showLogin(`The gateway answered HTTP ${res.status}. ${serverMessage(body)}`);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, tok);
    state.session = null;
    $("token").value = "";
    enter(body);
  } catch (e) {
    showLogin(`Cannot reach the gateway: ${e.message}. Is \`orteam serve\` running?`);
  } finally {
    $("login-submit").disabled = false;
  }
}

function enter(body) {
  $("login").hidden = true;
  $("dash").hidden = false;
  $("logout").hidden = false;
  render(body);
  startPolling();
  loadWho();
}

/** Who the gateway says the caller is; a member's page says whose view it is. */
async function loadWho() {
  try {
    const { res, body } = await getJson("/admin/v1/whoami", token());
    if (!res.ok || !body) return;
    state.who = body;
    document.body.dataset.role = body.role;
    const who = $("whoami");
    who.hidden = false;
    who.textContent = body.role === "member"
      ? `${body.email || body.member} · your own view`
      : `${body.email || body.name} · ${body.role.replace("_", " ")}` +
        (body.teams && body.teams.length ? ` of ${body.teams.join(", ")}` : "");
    // Org-wide anomalies are for those who see everything.
    $("anomalies-card").hidden = !["admin", "viewer"].includes(body.role);
    refreshAudit();
  } catch (_) { /* the next poll shows connection problems */ }
}

function startPolling() {
  stopPolling();
  state.timer = setInterval(refresh, POLL_MS);
}

function stopPolling() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

async function refresh() {
  const tok = token();
  if (!signedIn()) return showLogin("");
  if (state.busy) return;
  state.busy = true;
  try {
    const { res, body } = await fetchSnapshot(tok);
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(TOKEN_KEY);
      const wasSession = Boolean(state.session);
      state.session = null;
      return showLogin(wasSession ? `Your session ended (HTTP ${res.status}): ${serverMessage(body)}`
        : refusedMessage(res, body));
    }
    if (!res.ok || !body) throw new Error(serverMessage(body) || `HTTP ${res.status}`);
    $("conn-error").hidden = true;
    render(body);
    if (state.refreshes % 5 === 0) refreshAudit();
  } catch (e) {
    setStatus("down", "connection lost, retrying…");
    $("conn-error").hidden = false;
    $("conn-error").textContent = `Cannot refresh: ${e.message}. Retrying every 2 s.`;
  } finally {
    state.busy = false;
  }
}

function setStatus(cls, text) {
  const s = $("status");
  s.className = "status " + cls;
  s.textContent = text;
}

// ---------------------------------------------------------------- rendering

function render(snap) {
  state.refreshes += 1;
  document.body.dataset.refreshes = String(state.refreshes);
  document.body.dataset.generatedAt = snap.generated_at;
  setStatus("live", `live · updated ${clock(snap.generated_at)} UTC · ${snap.backend}`);
  renderKpis(snap);
  renderEmpty(snap);
  renderChart("chart-spend", snap.charts && snap.charts.spend_over_time);
  renderChart("chart-models", snap.charts && snap.charts.spend_by_model);
  renderGauges(snap.budgets);
  renderAlerts($("alerts"), snap.alerts,
    "All clear: no budget above 80 %, no key overdue for rotation, no failed requests, no member refused 10 times today.");
  renderRefused(snap.refusals || []);
  renderReconcile(snap.reconciliation);
  renderAnomalies(snap);
  renderRoutes(snap.by_route || []);
  renderRecent(snap.recent);
  renderKeys(snap.keys, snap.key_totals);
}

function renderKpis(snap) {
  $("kpi-today").textContent = usd(snap.totals.spend_today);
  $("kpi-month").textContent = usd(snap.totals.spend_month);
  $("kpi-requests").textContent = String(snap.totals.requests_today) +
    (snap.totals.failed_today ? ` (${snap.totals.failed_today} failed)` : "") +
    (snap.totals.refused_today ? ` · ${snap.totals.refused_today} refused` : "");
  $("kpi-members").textContent = String(snap.totals.members);
  $("kpi-due").textContent = String(snap.key_totals.rotation_overdue);
}

function renderEmpty(snap) {
  const p = $("no-requests");
  p.hidden = snap.totals.any_requests;
  if (snap.totals.any_requests) return;
  p.replaceChildren(
    "No requests yet. Send one through this gateway with a member's key: ",
    el("code", {}, `curl ${location.origin}/v1/chat/completions -H "Authorization: Bearer $ORTEAM_KEY" ` +
      `-H 'content-type: application/json' -d '{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'`),
    " — or run ", el("code", {}, "orteam demo"), " to see the whole product with sample traffic.");
}

function renderChart(id, svgText) {
  const host = $(id);
  if (!svgText) { host.replaceChildren(); return; }
  const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
  const svg = doc.documentElement;
  if (!svg || svg.nodeName !== "svg") return;
  host.replaceChildren(document.importNode(svg, true));
}

function renderGauges(budgets) {
  const host = $("gauges");
  if (!budgets.length) {
    host.replaceChildren(el("p", { class: "empty" },
      "No budgets set. Add one to team.toml, e.g. ",
      el("code", {}, 'budget = { daily = "5.00" }'),
      " under a member, team or [org], then run ", el("code", {}, "orteam team apply"), "."));
    return;
  }
  const nodes = [];
  let scope = null;
  for (const b of budgets) {
    if (b.scope !== scope) {
      scope = b.scope;
      nodes.push(el("div", { class: "gauge-group" }, { member: "Members", team: "Teams", org: "Org" }[scope] || scope));
    }
    const pct = Math.min(1000, b.used_permille) / 10;
    const cls = b.used_permille >= 1000 ? "full" : b.used_permille >= 800 ? "warn" : "ok";
    const fill = el("div", { class: "fill" });
    fill.style.width = pct + "%";
    nodes.push(el("div", {
      class: "gauge " + cls, "data-scope": b.scope, "data-id": b.scope_id, "data-window": b.window,
      role: "meter", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct,
      "aria-label": `${b.scope} ${b.scope_id} ${b.window} budget`,
    },
      el("div", { class: "row" },
        el("span", {}, `${b.scope_id} · ${b.window}`, b.raised !== "0" ? el("span", { class: "muted" }, ` (+${usd(b.raised)} raise)`) : null),
        el("span", { class: "amt" }, `${usd(b.spent)} of ${usd(b.limit)} · ${Math.floor(pct)} % · resets ${until(b.reset_at)}`)),
      el("div", { class: "track" }, fill)));
  }
  host.replaceChildren(...nodes);
}

function renderAlerts(host, alerts, emptyText) {
  if (!alerts.length) {
    host.replaceChildren(el("li", { class: "none" }, emptyText));
    return;
  }
  host.replaceChildren(...alerts.map((a) => el("li", { class: a.severity, "data-kind": a.kind },
    el("strong", {}, a.severity), " · ", a.message,
    a.action ? el("span", { class: "action" }, "→ ", el("code", {}, a.action)) : null)));
}

function renderAnomalies(snap) {
  $("anomaly-source").textContent = snap.anomaly_detector ? `(${snap.anomaly_detector})` : "";
  const text = snap.anomaly_detector
    ? "No anomalies in recent traffic."
    : "No anomalies: no anomaly detector is wired into this gateway yet.";
  renderAlerts($("anomalies"), snap.anomalies, text);
}

/** Who was refused today, how often and by what (the ledger's refusal counts). */
function renderRefused(refusals) {
  const body = $("refused").tBodies[0];
  if (!refusals.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No request refused today.")));
    return;
  }
  body.replaceChildren(...refusals.map((r) => el("tr", { "data-member": r.member, "data-reason": r.reason },
    el("td", {}, r.member || "unknown key"),
    el("td", {}, refusedBy(r)),
    el("td", { class: "num" }, String(r.count)),
    el("td", {}, time(r.last)))));
}

/** The newest reconciliation with OpenRouter: what it changed and what it left. */
function renderReconcile(r) {
  const card = $("reconcile-card");
  if (!r) {
    card.dataset.state = "none";
    $("reconcile-when").textContent = "";
    $("reconcile-summary").textContent = "No reconciliation has run yet (the serving gateway runs it periodically; or run orteam reconcile).";
    $("reconcile-lines").replaceChildren();
    return;
  }
  card.dataset.state = r.outstanding ? "differs" : "ok";
  $("reconcile-when").textContent = `(${r.source}, ${time(r.finished_at)})`;
  $("reconcile-summary").replaceChildren(
    el("span", { "data-field": "matched" }, `${r.matched} matched`), " · ",
    el("span", { "data-field": "corrected" }, `${r.corrected} corrected`), " · ",
    el("span", { "data-field": "inserted" }, `${r.inserted} inserted`), " · ",
    el("span", { "data-field": "org-level" }, `${usd(r.org_level)} booked at org level`), " · ",
    el("span", { "data-field": "outstanding" }, `${r.outstanding} outstanding`),
    " · unattributed (org) this month: ", el("span", { "data-field": "org-level-month" }, usd(r.org_level_month)),
    r.incomplete ? " · some look-ups failed" : "");
  const lines = r.outstanding_lines.map((t) => el("li", { class: "warning", "data-kind": "outstanding" }, t))
    .concat(r.changes.map((t) => el("li", { class: "info", "data-kind": "change" }, t)));
  if (!lines.length) lines.push(el("li", { class: "none" }, "The ledger matches what OpenRouter billed."));
  $("reconcile-lines").replaceChildren(...lines);
}

function refusedBy(r) {
  if (r.reason === "budget_exceeded") return r.detail ? `${r.detail} budget` : "a budget";
  if (r.reason === "rate_limit_exceeded") return `rate limit${r.detail ? " (" + r.detail + ")" : ""}`;
  if (r.reason === "model_not_allowed") return `${r.detail || "tier"}: model not allowed`;
  if (r.reason === "invalid_api_key") return "not a valid key";
  return r.reason.replaceAll("_", " ") + (r.detail ? `: ${r.detail}` : "");
}

function renderRoutes(routes) {
  const body = $("routes").tBodies[0];
  if (!routes.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No requests this month.")));
    return;
  }
  body.replaceChildren(...routes.map((r) => el("tr", { "data-route": r.route },
    el("td", {}, r.route),
    el("td", { class: "num" }, usd(r.spend_today)),
    el("td", { class: "num" }, String(r.requests_today)),
    el("td", { class: "num" }, usd(r.spend_month)),
    el("td", { class: "num" }, String(r.requests_month)))));
}

function renderRecent(recent) {
  const body = $("recent").tBodies[0];
  if (!recent.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "muted" },
      "No requests yet — send one through the gateway, or run ", el("code", {}, "orteam demo"), ".")));
    return;
  }
  const first = state.seen.size === 0;
  const rows = recent.map((r) => {
    const substituted = r.served_model && r.served_model !== r.requested_model;
    // A model served outside the tier is a policy violation, not a downgrade the tier chose.
    const note = r.served_outside_tier
      ? el("span", { class: "violation", title: "upstream served a model outside this member's tier" }, " (policy violation: outside tier)")
      : el("span", { class: "muted" }, " (downgraded)");
    const model = substituted || r.served_outside_tier
      ? [r.requested_model, el("span", { class: "muted" }, " → "), r.served_model || r.requested_model, note]
      : [r.served_model || r.requested_model];
    const tr = el("tr", { "data-request-id": r.request_id, class: !first && !state.seen.has(r.request_id) ? "fresh" : null },
      el("td", {}, clock(r.time)), el("td", {}, r.member === "(org)" ? "unattributed (org)" : r.member),
      el("td", {}, r.route || "chat"), el("td", {}, ...model),
      el("td", { class: "num" }, `${r.prompt_tokens} / ${r.completion_tokens}`),
      el("td", { class: "num" }, usd(r.cost)),
      el("td", {}, pill(r.outcome), r.streamed ? el("span", { class: "muted" }, " stream") : null,
        r.reconciled ? el("span", { class: "muted reconciled", title: r.reconciled }, " reconciled") : null),
      el("td", { class: "num" }, r.latency || `${r.latency_ms} ms`));
    return tr;
  });
  recent.forEach((r) => state.seen.add(r.request_id));
  body.replaceChildren(...rows);
}

function limitText(k) {
  if (!k.limit) return k.mode === "direct" ? "at OpenRouter" : "none";
  return `${usd(k.limit)}${k.limit_window ? " / " + { daily: "day", weekly: "week", monthly: "month" }[k.limit_window] : ""}`;
}

function renderKeys(keys, totals) {
  const table = $("keys");
  if (!keys.length) {
    table.tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 12, class: "muted" },
      "No keys yet. Add members to team.toml and run ", el("code", {}, "orteam team apply"), ".")));
    table.tFoot.replaceChildren();
    return;
  }
  table.tBodies[0].replaceChildren(...keys.map((k) => el("tr", { "data-key": k.key },
    el("td", {}, k.member), el("td", {}, k.mode), el("td", {}, el("code", {}, k.key)),
    el("td", { class: "num" }, k.generation ?? "–"),
    el("td", { class: "num" }, k.usage_today === null ? "–" : usd(k.usage_today)),
    el("td", { class: "num" }, k.usage_month === null ? "–" : usd(k.usage_month)),
    el("td", {}, limitText(k)), el("td", {}, k.limit_reset ? time(k.limit_reset) : "–"),
    el("td", {}, time(k.expires_at)),
    el("td", { class: k.rotation_overdue ? "overdue" : "" }, k.rotation_due ? time(k.rotation_due) + (k.rotation_overdue ? " (overdue)" : "") : "–"),
    el("td", {}, pill(k.state)), el("td", {}, time(k.last_used_at)))));
  table.tFoot.replaceChildren(el("tr", {},
    el("td", { colspan: 4 }, `${totals.keys} keys, ${totals.live} live`),
    el("td", { class: "num" }, usd(totals.usage_today)), el("td", { class: "num" }, usd(totals.usage_month)),
    el("td", { colspan: 6 }, totals.rotation_overdue ? `${totals.rotation_overdue} overdue for rotation` : "")));
}

// ---------------------------------------------------------------- audit log

/** The newest audit entries and the chain's check; the panel stays hidden for roles that may
 * not read the audit log (the gateway answers 403). */
async function refreshAudit() {
  const card = $("audit-card");
  if (!state.who || !["admin", "viewer"].includes(state.who.role)) { card.hidden = true; return; }
  const tok = token();
  const [{ res, body }, verify] = await Promise.all([
    getJson("/admin/v1/audit?limit=20", tok),
    getJson("/admin/v1/audit/verify", tok),
  ]);
  if (!res.ok || !Array.isArray(body)) { card.hidden = true; return; }
  card.hidden = false;
  const chain = $("audit-chain");
  if (verify.res.ok && verify.body) {
    const ok = verify.body.problems.length === 0;
    chain.className = ok ? "chain-ok" : "chain-bad";
    chain.textContent = ok
      ? `(hash chain intact, ${verify.body.entries} entries)`
      : `(hash chain broken: ${verify.body.problems.length} problem(s); run orteam audit verify)`;
  }
  const rows = body.slice().reverse();
  const tbody = $("audit").tBodies[0];
  if (!rows.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No admin action recorded yet.")));
    return;
  }
  tbody.replaceChildren(...rows.map((e) => el("tr", { "data-seq": e.seq, "data-action": e.action },
    el("td", {}, time(e.at)), el("td", {}, e.actor), el("td", {}, e.action), el("td", {}, e.target),
    el("td", {}, e.source || "–"),
    el("td", { class: "details" }, [e.before, e.after].filter(Boolean).join(" → ")))));
}

// ---------------------------------------------------------------- wiring

async function signOut() {
  if (state.session) {
    try {
      await fetch("/auth/logout", {
        method: "POST", credentials: "same-origin", headers: { "x-orteam-csrf": state.session.csrf },
      });
    } catch (_) { /* the cookie is cleared by the gateway; offline, it expires */ }
    state.session = null;
  }
  sessionStorage.removeItem(TOKEN_KEY);
  state.who = null;
  showLogin("Signed out.");
}

async function init() {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("[data-by]")) {
    b.addEventListener("click", () => {
      state.by = b.dataset.by;
      document.querySelectorAll("[data-by]").forEach((x) => x.classList.toggle("on", x === b));
      refresh();
    });
  }
  $("range").addEventListener("change", (e) => { state.range = e.target.value; refresh(); });
  // A refused single sign-on comes back here with the reason.
  const params = new URLSearchParams(location.search);
  const ssoError = params.get("sso_error");
  if (ssoError) history.replaceState(null, "", location.pathname);
  let sso = null;
  try {
    const { res, body } = await getJson("/auth/session", null);
    if (res.ok) sso = body;
  } catch (_) { sso = null; }
  $("sso-box").hidden = !(sso && sso.sso);
  if (sso && sso.signed_in && !token()) state.session = sso;
  if (signedIn()) {
    $("login").hidden = true;
    $("dash").hidden = false;
    $("logout").hidden = false;
    await refresh();
    if (signedIn()) { startPolling(); loadWho(); }
  } else {
    showLogin(ssoError || "");
  }
}

document.addEventListener("DOMContentLoaded", init);
