#!/usr/bin/env bash
# Runs the real Codex CLI once (`codex exec`), non-interactively, against an OpenAI-Responses
# endpoint (orteam's `POST /v1/responses`), offline: throwaway HOME and CODEX_HOME, clean
# environment, custom provider, no update check, analytics, feedback, OTel, plugin sync or web-search
# tool. Only BASE_URL is contacted.
#
#   codex.sh BIN_DIR BASE_URL KEY MODEL PROMPT [NAME=VALUE | codex-exec-arg]...
#
#   BIN_DIR   directory holding `codex` (what scripts/agents-env.sh prints)
#   BASE_URL  base WITH /v1, e.g. http://127.0.0.1:PORT/v1 (Codex appends /responses)
#   KEY       sent as `Authorization: Bearer KEY`
#   MODEL     model slug, e.g. openai/gpt-4o-mini
#   PROMPT    the prompt for `codex exec`
#   extra     NAME=VALUE adds/overrides an environment variable of the agent; anything else is
#             passed to `codex exec`, e.g. `-c model_providers.orteam.stream_max_retries=0`.
#
# Prints the agent's stdout (only the final assistant message) and stderr (banner, transcript,
# "ERROR: ..." lines) and exits with the agent's exit code (0 ok, 1 error, 124 timeout).
# ORTEAM_AGENT_TIMEOUT (seconds, default 120) bounds the run; ORTEAM_AGENT_KEEP=1 keeps the temp dir.
set -uo pipefail
if [ "$#" -lt 5 ]; then
  echo "usage: $0 BIN_DIR BASE_URL KEY MODEL PROMPT [NAME=VALUE | arg]..." >&2
  exit 2
fi
bin_dir=$1 base_url=${2%/} key=$3 model=$4 prompt=$5
shift 5
if [ ! -x "$bin_dir/codex" ]; then
  echo "codex.sh: no executable $bin_dir/codex (run scripts/agents-env.sh)" >&2
  exit 2
fi
command -v node >/dev/null 2>&1 || { echo "codex.sh: node not found (bin/codex is a Node launcher)" >&2; exit 2; }
node_dir=$(dirname "$(command -v node)")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/orteam-codex.XXXXXX")
cleanup() { [ "${ORTEAM_AGENT_KEEP:-}" = 1 ] && echo "codex.sh: kept $tmp" >&2 || rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/home" "$tmp/codex" "$tmp/work"

toml_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
cat > "$tmp/codex/config.toml" <<TOML
model = $(toml_str "$model")
model_provider = "orteam"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false
# A client web_search tool would be turned into a paid server-side search upstream.
web_search = "disabled"

[model_providers.orteam]
name = "orteam"
base_url = $(toml_str "$base_url")
env_key = "ORTEAM_AGENT_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"

[history]
persistence = "none"

[features]
# Plugin marketplace sync would contact github.com at startup.
plugins = false
# Otherwise a refused connection (gateway not up) is retried forever ("waiting for network").
unbounded_connection_retries = false
TOML

envs=(
  PATH="$bin_dir:$node_dir:/usr/local/bin:/usr/bin:/bin"
  HOME="$tmp/home"
  CODEX_HOME="$tmp/codex"
  TMPDIR="$tmp"
  TERM=dumb
  LANG=C.UTF-8
  ORTEAM_AGENT_KEY="$key"
)
args=()
for a in "$@"; do
  if [[ "$a" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then envs+=("$a"); else args+=("$a"); fi
done

cd "$tmp/work"
timeout --kill-after=10 "${ORTEAM_AGENT_TIMEOUT:-120}" env -i "${envs[@]}" \
  "$bin_dir/codex" exec --skip-git-repo-check --ephemeral --color never "${args[@]}" "$prompt" < /dev/null
rc=$?
[ "$rc" = 124 ] && echo "codex.sh: timed out after ${ORTEAM_AGENT_TIMEOUT:-120}s" >&2
exit "$rc"
