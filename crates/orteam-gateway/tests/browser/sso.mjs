// Single sign-on end to end in headless Chromium (Debian's, via playwright-core) against a real
// OpenID provider (oidc-provider, started by the Rust test): sign-in, roles from groups, a member
// seeing only themselves, CSRF, sign-out, tampered / expired / wrong-audience ID tokens refused.
// Usage: node sso.mjs GATEWAY_ROOT ISSUER
// Env: ORTEAM_TEST_NODE_MODULES (where playwright-core is), ORTEAM_TEST_CHROMIUM,
//      ORTEAM_TEST_SCREENSHOT (PNG path of the member's view, optional).
import { launchChromium } from "../../../orteam-test-support/js/chromium.mjs";
import assert from "node:assert/strict";

const [root, issuer] = process.argv.slice(2);
const modules = process.env.ORTEAM_TEST_NODE_MODULES;
if (!root || !issuer || !modules) {
  console.error("usage: ORTEAM_TEST_NODE_MODULES=… node sso.mjs GATEWAY_ROOT ISSUER");
  process.exit(2);
}
const step = (msg) => console.log(`- ${msg}`);
const browser = await launchChromium();
const problems = [];

/** A fresh browser (no cookies) that signs in at the provider as `login`; returns on the
 * dashboard, signed in or showing why not. */
async function ssoSignIn(login) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  // The provider's sign-in page imports a web font; offline, that request fails (not our page).
  await context.route((url) => !url.href.startsWith(root) && !url.href.startsWith(issuer),
    (route) => route.abort());
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => problems.push(`${login}: page error: ${e.message}`));
  page.on("console", (m) => {
    const t = m.text();
    // Expected: the 401 of the signed-out page, and the provider's blocked font.
    if (m.type() === "error" && !/status of 40[13]/.test(t) && !/ERR_FAILED|fonts/.test(t)) {
      problems.push(`${login}: console: ${t}`);
    }
  });
  await page.goto(`${root}/dashboard`);
  await page.locator("#sso-login").waitFor({ state: "visible" });
  await page.click("#sso-login");
  await page.locator('input[name="login"]').waitFor();
  assert.ok(page.url().startsWith(issuer), `at the provider: ${page.url()}`);
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any-password");
  await page.click("button.login-submit");
  await page.locator('input[name="prompt"][value="consent"]').waitFor({ state: "attached" });
  await page.click("button.login-submit");
  await page.waitForURL((u) => u.href.startsWith(`${root}/dashboard`));
  return { context, page };
}

async function sessionCookie(context) {
  return (await context.cookies(root)).find((c) => c.name === "orteam_session");
}

async function pageFetch(page, url, init) {
  return page.evaluate(async ([u, i]) => {
    const r = await fetch(u, i || {});
    return { status: r.status, body: await r.text() };
  }, [url, init || null]);
}

try {
  // 1. An admin by group: sees everyone, the audit log panel, and the session cookie is safe.
  {
    const { context, page } = await ssoSignIn("root");
    await page.locator("#dash").waitFor({ state: "visible" });
    await page.locator("#whoami").waitFor({ state: "visible" });
    assert.match(await page.locator("#whoami").textContent(), /root@example\.com · admin/);
    await page.locator('.gauge[data-scope="member"][data-id="carol"]').waitFor();
    await page.locator('.gauge[data-scope="member"][data-id="alice"]').waitFor();
    const cookie = await sessionCookie(context);
    assert.ok(cookie, "a session cookie");
    assert.equal(cookie.httpOnly, true, "HttpOnly");
    assert.equal(cookie.sameSite, "Lax", "SameSite=Lax");
    assert.equal(cookie.secure, false, "not Secure on plain http");
    assert.equal(await page.evaluate(() => document.cookie.includes("orteam_session")), false,
      "scripts cannot read the session");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("orteam.adminToken")), null);
    assert.ok(!(await context.cookies(root)).some((c) => c.name === "orteam_sso_flow"),
      "the flow cookie is cleared");
    // The audit panel shows this sign-in, and the chain verifies.
    const signIn = page.locator('#audit tbody tr[data-action="sign_in"]').first();
    await signIn.waitFor();
    assert.match(await signIn.textContent(), /sso:root@example\.com/);
    assert.match(await signIn.textContent(), /"role":"admin"/);
    assert.match(await page.locator("#audit-chain").textContent(), /hash chain intact/);
    // CSRF: a state-changing request with the cookie alone is refused, the header passes.
    const raise = { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ scope: "member", id: "alice", window: "daily", amount: "1.00" }) };
    const noCsrf = await pageFetch(page, "/admin/v1/budgets/raise", raise);
    assert.equal(noCsrf.status, 403, noCsrf.body);
    assert.match(noCsrf.body, /x-orteam-csrf/);
    const members = await pageFetch(page, "/admin/v1/members");
    assert.equal(members.status, 200);
    assert.match(members.body, /"carol"/);
    step("root (group orteam-admins) signs in as admin: sees every member and the audit log; HttpOnly SameSite=Lax cookie; a POST without the CSRF header is refused");
    await context.close();
  }

  // 2. A viewer by group.
  {
    const { context, page } = await ssoSignIn("fin");
    await page.locator("#whoami").waitFor({ state: "visible" });
    assert.match(await page.locator("#whoami").textContent(), /fin@example\.com · viewer/);
    await page.locator("#audit-card").waitFor({ state: "visible" });
    step("fin (group finance) signs in as viewer");
    await context.close();
  }

  // 2b. A team lead by group, with the max_raise the team file's [access.groups] gives it.
  {
    const { context, page } = await ssoSignIn("lead");
    await page.locator("#whoami").waitFor({ state: "visible" });
    const session = JSON.parse((await pageFetch(page, "/auth/session")).body);
    assert.equal(session.role, "team_lead", JSON.stringify(session));
    assert.deepEqual(session.teams, ["core"]);
    const until = new Date(Date.now() + 3600 * 1000).toISOString();
    const raise = (id, amount) => pageFetch(page, "/admin/v1/budgets/raise", {
      method: "POST",
      headers: { "content-type": "application/json", "x-orteam-csrf": session.csrf },
      body: JSON.stringify({ scope: "member", id, window: "daily", amount, until, reason: "sso lead" }),
    });
    const ok = await raise("alice", "10.00");
    assert.ok(ok.status >= 200 && ok.status < 300, `a raise up to max_raise: ${ok.status} ${ok.body}`);
    const above = await raise("alice", "10.01");
    assert.equal(above.status, 403, above.body);
    assert.match(above.body, /above .*max_raise 10/);
    const otherTeam = await raise("carol", "1.00");
    assert.equal(otherTeam.status, 403, otherTeam.body);
    assert.match(otherTeam.body, /team lead of core only/);
    step("lead (group core-leads in the team file) is team lead of core: raises alice by 10.00 (its max_raise), not 10.01, not carol of web");
    await context.close();
  }

  // 3. A member by the team file's email: only themselves; then sign-out.
  {
    const { context, page } = await ssoSignIn("alice");
    await page.locator("#whoami").waitFor({ state: "visible" });
    assert.match(await page.locator("#whoami").textContent(), /alice@example\.com · your own view/);
    await page.locator('.gauge[data-scope="member"][data-id="alice"]').waitFor();
    await page.locator("#recent tbody tr[data-request-id]").first().waitFor();
    const who = await page.$$eval("#recent tbody tr[data-request-id] td:nth-child(2)", (tds) => tds.map((t) => t.textContent));
    assert.ok(who.length >= 1 && who.every((m) => m === "alice"), `only alice's requests: ${who}`);
    await page.locator('#refused tbody tr[data-member="alice"]').waitFor();
    const refusedRows = await page.$$eval("#refused tbody tr[data-member]", (trs) => trs.map((t) => t.dataset.member));
    assert.ok(refusedRows.every((m) => m === "alice"), `only alice's refusals: ${refusedRows}`);
    assert.ok(refusedRows.length >= 1, "alice's own refusal is shown");
    assert.equal(await page.locator('.gauge[data-scope="member"][data-id="carol"]').count(), 0);
    assert.equal(await page.locator('.gauge[data-scope="member"][data-id="bob"]').count(), 0);
    const text = await page.locator("#dash").textContent();
    assert.doesNotMatch(text, /carol|bob/, "nothing of anyone else");
    assert.equal(await page.locator("#audit-card").isHidden(), true);
    assert.equal(await page.locator("#anomalies-card").isHidden(), true);
    const members = await pageFetch(page, "/admin/v1/members");
    assert.equal(members.status, 200);
    assert.doesNotMatch(members.body, /carol|bob/);
    const audit = await pageFetch(page, "/admin/v1/audit");
    assert.equal(audit.status, 403, audit.body);
    if (process.env.ORTEAM_TEST_SCREENSHOT) {
      await page.screenshot({ path: process.env.ORTEAM_TEST_SCREENSHOT, fullPage: true });
    }
    step("alice (email in the team file) sees only herself: her budgets, requests and refusals");

    await page.click("#logout");
    await page.locator("#login-form").waitFor({ state: "visible" });
    assert.equal(await sessionCookie(context), undefined, "the session cookie is cleared");
    const after = await pageFetch(page, "/admin/v1/dashboard");
    assert.equal(after.status, 401, after.body);
    await page.reload();
    await page.locator("#login-form").waitFor({ state: "visible" });
    step("sign-out clears the session; the admin API then answers 401");
    await context.close();
  }

  // 4. ID tokens the provider's answer carries, altered: each refused, no session.
  // Tampering: mallory (no role) makes her token say she is in orteam-admins.
  for (const [mode, login, why] of [["tamper", "mallory", /ID token refused.*ignature/i],
    ["expired", "root", /ID token refused.*xpired/i],
    ["wrong_aud", "root", /ID token refused.*audience/i]]) {
    const res = await fetch(`${issuer}/__fault/${mode}`, { method: "POST" });
    assert.equal(res.status, 204);
    const { context, page } = await ssoSignIn(login);
    const err = page.locator("#login-error");
    try {
      await err.waitFor({ state: "visible" });
    } catch (e) {
      throw new Error(`${mode}: no refusal shown at ${page.url()}; whoami: ` +
        `${await page.locator("#whoami").textContent()}; ${e.message}`);
    }
    const msg = await err.textContent();
    assert.match(msg, why, `${mode}: ${msg}`);
    assert.equal(await sessionCookie(context), undefined, `${mode}: no session`);
    assert.equal(await page.locator("#dash").isHidden(), true);
    step(`${mode} ID token refused: "${msg.slice(0, 110)}"`);
    await context.close();
  }

  // 5. Someone the provider knows but orteam does not.
  {
    const { context, page } = await ssoSignIn("mallory");
    const err = page.locator("#login-error");
    await err.waitFor({ state: "visible" });
    assert.match(await err.textContent(), /mallory@example\.com: no member of the team file/);
    assert.equal(await sessionCookie(context), undefined);
    step("an identity with no role and no member is refused");
    await context.close();
  }

  assert.deepEqual(problems, [], "no page errors or console errors");
  console.log("sso ok");
} catch (e) {
  console.error(e && e.stack ? e.stack : e);
  if (problems.length) console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
