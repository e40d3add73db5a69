// Drives the orteam dashboard in headless Chromium (Debian's, via playwright-core).
// Usage: node dashboard.mjs ROOT_URL ADMIN_TOKEN
// Env: ORTEAM_TEST_NODE_MODULES (where playwright-core is), ORTEAM_TEST_CHROMIUM,
//      ORTEAM_TEST_MEMBER_KEY (a member key, to send a request while the page is open),
//      ORTEAM_TEST_SCREENSHOT (PNG path).
import { launchChromium } from "../../../orteam-test-support/js/chromium.mjs";
import assert from "node:assert/strict";

const [root, adminToken] = process.argv.slice(2);
const modules = process.env.ORTEAM_TEST_NODE_MODULES;
if (!root || !adminToken || !modules) {
  console.error("usage: ORTEAM_TEST_NODE_MODULES=… node dashboard.mjs ROOT_URL ADMIN_TOKEN");
  process.exit(2);
}
const step = (msg) => console.log(`- ${msg}`);
const browser = await launchChromium();
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The wrong-token attempt logs the 401 as a failed resource load; anything else is a bug.
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  await page.goto(`${root}/dashboard`);
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.locator("#dash").isHidden(), true, "data shown before sign-in");
  step("loads and asks for the admin token");

  await page.fill("#token", "not-the-token");
  await page.click("#login-submit");
  const err = page.locator("#login-error");
  await err.waitFor({ state: "visible" });
  const errText = await err.textContent();
  assert.match(errText, /refused this admin token \(HTTP 401\)/);
  assert.match(errText, /ORTEAM_ADMIN_TOKEN/);
  assert.equal(await page.locator("#dash").isHidden(), true);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("orteam.adminToken")), null);
  step(`a wrong token is refused: "${errText.slice(0, 60)}…"`);

  await page.fill("#token", adminToken);
  await page.click("#login-submit");
  await page.locator("#dash").waitFor({ state: "visible" });
  await page.locator("#login").waitFor({ state: "hidden" });
  step("signs in");

  // Every chart renders with data.
  const spend = page.locator('#chart-spend svg[data-chart="spend-over-time"][data-has-data="true"]');
  await spend.waitFor();
  assert.ok(await spend.locator("polyline").count() >= 3, "one line per member");
  assert.match(await spend.textContent(), /alice/);
  const models = page.locator('#chart-models svg[data-chart="spend-by-model"][data-has-data="true"]');
  await models.waitFor();
  assert.ok(await models.locator("rect").count() >= 4, "bars per model");
  assert.match(await models.textContent(), /openai\/gpt-4o/);
  for (const scope of ["member", "team", "org"]) {
    assert.ok(await page.locator(`.gauge[data-scope="${scope}"]`).count() >= 1, `${scope} gauge`);
  }
  const bobGauge = page.locator('.gauge[data-scope="member"][data-id="bob"]');
  assert.ok(Number(await bobGauge.getAttribute("aria-valuenow")) > 0, "bob's gauge shows spend");
  assert.ok(await page.locator("#keys tbody tr").count() >= 4, "keys table");
  assert.match(await page.locator("#keys tbody").textContent(), /overdue/);
  assert.match(await page.locator("#keys tfoot").textContent(), /keys, \d+ live/);
  assert.ok(await page.locator("#recent tbody tr[data-request-id]").count() >= 20, "recent requests");
  assert.match(await page.locator("#recent tbody").textContent(), /downgraded/);
  assert.equal(await page.locator("#recent thead th:nth-child(3)").textContent(), "Route");
  assert.equal(await page.locator("#recent tbody tr[data-request-id] td:nth-child(3)").first().textContent(), "chat");
  assert.match(await page.locator('#routes tbody tr[data-route="chat"]').textContent(), /^chat\$/);
  assert.ok(await page.locator('#alerts li[data-kind="budget"]').count() >= 1, "budget alert");
  assert.ok(await page.locator('#alerts li[data-kind="rotation"]').count() >= 1, "rotation alert");
  assert.match(await page.locator("#anomalies").textContent(), /No anomalies/);
  assert.match(await page.locator("#kpi-today").textContent(), /^\$\d+\.\d+$/);
  await page.locator("#audit-card").waitFor({ state: "visible" });
  await page.waitForFunction(() => /hash chain intact/.test(document.getElementById("audit-chain").textContent));
  assert.match(await page.locator("#whoami").textContent(), /bootstrap · admin/);
  step("spend chart, model chart, spend by route, gauges for member/team/org, keys, recent requests, alerts, anomalies and the audit log render");

  // The by-model toggle redraws the chart split by model.
  await page.click('button[data-by="model"]');
  await page.waitForFunction(() => {
    const svg = document.querySelector('#chart-spend svg');
    return svg && /claude-3\.5-sonnet/.test(svg.textContent) && !/\balice\b/.test(svg.textContent);
  });
  step("the by-model toggle redraws the chart");
  await page.click('button[data-by="member"]');
  await page.waitForFunction(() => /alice/.test(document.querySelector('#chart-spend svg').textContent));

  // A live update: a request sent now shows up without a reload.
  const before = await page.evaluate(() => ({
    ids: [...document.querySelectorAll("#recent tbody tr[data-request-id]")].map((r) => r.dataset.requestId),
    requests: document.getElementById("kpi-requests").textContent,
    refreshes: Number(document.body.dataset.refreshes),
  }));
  const res = await fetch(`${root}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.ORTEAM_TEST_MEMBER_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "openai/gpt-4o-mini", max_tokens: 50,
      messages: [{ role: "user", content: "live update [[sim:tokens=40]]" }] }),
  });
  assert.equal(res.status, 200, `chat request: ${res.status} ${await res.text()}`);
  await page.waitForFunction((old) => {
    const rows = [...document.querySelectorAll("#recent tbody tr[data-request-id]")];
    return rows.length > 0 && !old.includes(rows[0].dataset.requestId);
  }, before.ids, { timeout: 10000 });
  const first = page.locator("#recent tbody tr[data-request-id]").first();
  assert.match(await first.textContent(), /carol/);
  assert.notEqual(await page.locator("#kpi-requests").textContent(), before.requests);
  const after = await page.evaluate(() => Number(document.body.dataset.refreshes));
  assert.ok(after > before.refreshes, "polled again");
  step(`a request sent while the page is open appears live (refresh #${after})`);

  await page.waitForTimeout(2600); // let the "fresh" highlight fade before the screenshot
  if (process.env.ORTEAM_TEST_SCREENSHOT) {
    await page.screenshot({ path: process.env.ORTEAM_TEST_SCREENSHOT, fullPage: true });
    step(`screenshot: ${process.env.ORTEAM_TEST_SCREENSHOT}`);
  }

  // The token survives a reload (same tab), and signing out forgets it.
  await page.reload();
  await page.locator('#chart-spend svg[data-has-data="true"]').waitFor();
  await page.click("#logout");
  await page.locator("#login-form").waitFor({ state: "visible" });
  assert.equal(await page.evaluate(() => sessionStorage.getItem("orteam.adminToken")), null);
  step("reload keeps the session; sign out forgets the token");

  // A member signs in with their own key and sees only themselves.
  await page.fill("#token", process.env.ORTEAM_TEST_MEMBER_KEY);
  await page.click("#login-submit");
  await page.locator("#whoami").waitFor({ state: "visible" });
  assert.match(await page.locator("#whoami").textContent(), /carol · your own view/);
  await page.locator('.gauge[data-scope="member"][data-id="carol"]').waitFor();
  await page.locator("#recent tbody tr[data-request-id]").first().waitFor();
  const members = await page.$$eval("#recent tbody tr[data-request-id] td:nth-child(2)", (tds) => tds.map((t) => t.textContent));
  assert.ok(members.every((m) => m === "carol"), `only carol's requests: ${members}`);
  assert.equal(await page.locator('.gauge[data-scope="member"][data-id="alice"]').count(), 0);
  assert.doesNotMatch(await page.locator("#dash").textContent(), /alice|bob/, "nothing of anyone else");
  assert.equal(await page.locator("#audit-card").isHidden(), true);
  assert.equal(await page.locator("#anomalies-card").isHidden(), true);
  await page.click("#logout");
  await page.locator("#login-form").waitFor({ state: "visible" });
  step("a member signed in with their own key sees only themselves");

  assert.deepEqual(problems, [], "no page errors or console errors");
  console.log("dashboard ok");
} catch (e) {
  console.error(e && e.stack ? e.stack : e);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
