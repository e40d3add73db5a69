#!/usr/bin/env bash
# Sets up (once) the real coding agents that the agent end-to-end tests drive: Claude Code
# (`claude`, talks Anthropic Messages) and Codex CLI (`codex`, talks OpenAI Responses), both from
# the npm registry, installed into a git-ignored directory. Prints the node_modules/.bin directory
# (holding `claude` and `codex`), for ORTEAM_TEST_AGENTS_BIN:
#
#   ORTEAM_TEST_AGENTS_BIN="$(bash scripts/agents-env.sh)" cargo test -p orteam-gateway --test agents
#
# Both packages ship their native binary as an npm optional dependency (per-platform package), so
# nothing is downloaded from outside the registry. Claude Code's postinstall only copies that
# binary over its `bin/claude.exe` placeholder; if npm skipped the script (npm 11 may, for scripts
# not approved with allowScripts), it is run here by hand. Claude Code declares node >= 22 but the
# native binary does not use Node; Codex's `bin/codex.js` launcher runs on Node 16+.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${ORTEAM_AGENTS_ENV:-target/agents-env}"
want="@anthropic-ai/claude-code@2.1.328 @openai/codex@0.169.0"

command -v npm >/dev/null 2>&1 || { echo "agents-env: npm not found (install nodejs/npm)" >&2; exit 1; }

mkdir -p "$dir"
stamp="$dir/.orteam-requirements"
bin="$dir/node_modules/.bin"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$bin/claude" ] || [ ! -x "$bin/codex" ]; then
  echo "agents-env: npm install $want" >&2
  [ -f "$dir/package.json" ] || echo '{"name":"orteam-agents-test","private":true}' > "$dir/package.json"
  # --include=optional: the platform binaries are optional dependencies and must not be omitted.
  (cd "$dir" && npm install --silent --no-audit --no-fund --no-update-notifier --include=optional \
    $want >&2)
  # If npm did not run Claude Code's postinstall, bin/claude.exe is still a placeholder stub.
  if ! "$bin/claude" --version >/dev/null 2>&1; then
    echo "agents-env: running @anthropic-ai/claude-code postinstall (install.cjs)" >&2
    (cd "$dir/node_modules/@anthropic-ai/claude-code" && node install.cjs >&2)
  fi
  for tool in claude codex; do
    if ! out="$("$bin/$tool" --version 2>&1)"; then
      echo "agents-env: '$tool --version' failed: $out" >&2
      exit 1
    fi
    echo "agents-env: $tool $out" >&2
  done
  echo "$want" > "$stamp"
fi
echo "$(cd "$bin" && pwd)"
