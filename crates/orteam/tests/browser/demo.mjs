// The dashboard right after `orteam demo`, in headless Chromium (Debian's, via playwright-core):
// it shows the demo's spend (the summary's total), its refusals and the spike as an anomaly.
// Usage: node demo.mjs ROOT_URL ADMIN_TOKEN SPEND REFUSED REFUSED_MEMBER ANOMALY_SUBJECT
// Env: ORTEAM_TEST_NODE_MODULES (where playwright-core is), ORTEAM_TEST_CHROMIUM.
import { launchChromium } from "../../../orteam-test-support/js/chromium.mjs";
import assert from "node:assert/strict";

const [root, adminToken, spend, refused, refusedMember, anomaly] = process.argv.slice(2);
const modules = process.env.ORTEAM_TEST_NODE_MODULES;
if (!anomaly || !modules) {
  console.error("usage: ORTEAM_TEST_NODE_MODULES=… node demo.mjs ROOT TOKEN SPEND REFUSED MEMBER ANOMALY");
  process.exit(2);
}
const step = (msg) => console.log(`- ${msg}`);
const browser = await launchChromium();
const problems = [];
try {
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 1000 } })).newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });

  await page.goto(`${root}/dashboard`);
  await page.locator("#login-form").waitFor({ state: "visible" });
  await page.fill("#token", adminToken);
  await page.click("#login-submit");
  await page.locator("#dash").waitFor({ state: "visible" });
  step("signs in with the token the demo printed");

  // Today's spend is the demo's: the summary's total, to the same digits.
  await page.waitForFunction(() => document.getElementById("kpi-today").textContent !== "–");
  assert.equal(await page.locator("#kpi-today").textContent(), spend, "spend today");
  assert.notEqual(spend, "$0.00");
  const spendChart = page.locator('#chart-spend svg[data-has-data="true"]');
  await spendChart.waitFor();
  step(`spend today ${spend}, as in the demo's summary`);

  // The refusals: the total in the KPI and the member's row in the refused panel.
  assert.match(await page.locator("#kpi-requests").textContent(), new RegExp(`· ${refused} refused$`));
  const row = page.locator(`#refused tbody tr[data-member="${refusedMember}"]`);
  await row.first().waitFor();
  assert.equal((await row.first().locator("td.num").first().textContent()).trim(), refused);
  step(`${refused} refused, ${refusedMember} in the refused panel: ${(await row.first().textContent()).trim()}`);

  // The spike is flagged.
  const anomalies = page.locator("#anomalies li");
  await anomalies.first().waitFor();
  assert.match(await page.locator("#anomalies").textContent(), new RegExp(anomaly));
  step(`anomalies: ${(await anomalies.first().textContent()).trim().slice(0, 100)}`);

  // Latencies have their precision: no "0 ms" for a sub-millisecond hop.
  const latencies = await page.locator("#recent tbody tr[data-request-id] td:last-child").allTextContents();
  assert.ok(latencies.length > 0);
  for (const t of latencies) {
    assert.match(t.trim(), /^\d+(\.\d+)? (µs|ms|s)$/, `latencies: ${latencies.join(", ")}`);
    assert.notEqual(t.trim(), "0 ms");
  }
  step(`latencies at their precision: ${latencies.slice(0, 5).join(", ")}`);

  assert.deepEqual(problems, [], "no page errors or console errors");
  console.log("demo dashboard ok");
} catch (e) {
  console.error(e && e.stack ? e.stack : e);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
