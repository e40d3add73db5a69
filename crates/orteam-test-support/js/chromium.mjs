// Headless Chromium for the browser tests, launched one way for all of them: Debian's binary
// (ORTEAM_TEST_CHROMIUM, default /usr/bin/chromium) through the playwright-core installed in
// ORTEAM_TEST_NODE_MODULES by scripts/browser-env.sh.
import { createRequire } from "node:module";
import path from "node:path";

export async function launchChromium() {
  const require = createRequire(path.join(process.env.ORTEAM_TEST_NODE_MODULES, "noop.js"));
  const { chromium } = require("playwright-core");
  return chromium.launch({
    executablePath: process.env.ORTEAM_TEST_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
