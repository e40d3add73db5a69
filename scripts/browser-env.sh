#!/usr/bin/env bash
# Sets up (once) what the dashboard tests drive: Debian's Chromium (headless), tmux (the
# `orteam top` end-to-end test), jq and curl (README's walk-through, run by
# crates/orteam/tests/it/readme.rs), playwright-core and oidc-provider (the certified OpenID
# provider the single sign-on test starts on loopback) from the npm registry, installed into a
# git-ignored directory. Prints the node_modules directory, for ORTEAM_TEST_NODE_MODULES:
#
#   ORTEAM_TEST_NODE_MODULES="$(bash scripts/browser-env.sh)" cargo test -p orteam-web
#
# `npx playwright install` (Playwright's own browser download) does not work here and is never
# used: the tests launch /usr/bin/chromium (override with ORTEAM_TEST_CHROMIUM).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${ORTEAM_BROWSER_ENV:-target/browser-test}"
want="playwright-core@1.65.1 oidc-provider@9.13.3"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "browser-env: apt-get install ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

mkdir -p "$dir"
stamp="$dir/.orteam-requirements"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -d "$dir/node_modules/playwright-core" ] \
  || [ ! -d "$dir/node_modules/oidc-provider" ]; then
  echo "browser-env: npm install $want" >&2
  [ -f "$dir/package.json" ] || echo '{"name":"orteam-browser-test","private":true}' > "$dir/package.json"
  (cd "$dir" && npm install --silent --no-audit --no-fund $want >&2)
  echo "$want" > "$stamp"
fi
echo "$(cd "$dir" && pwd)/node_modules"
