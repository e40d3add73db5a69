#!/usr/bin/env bash
# Runs the real Claude Code CLI once, non-interactively, against an Anthropic-Messages endpoint
# (orteam's `POST /v1/messages`), offline: throwaway HOME, clean environment, no telemetry,
# no auto-update, no feature-flag or error-reporting traffic. Only BASE_URL is contacted.
#
#   claude_code.sh BIN_DIR BASE_URL KEY MODEL PROMPT [NAME=VALUE | claude-arg]...
#
#   BIN_DIR   directory holding `claude` (what scripts/agents-env.sh prints)
#   BASE_URL  server root WITHOUT /v1, e.g. http://127.0.0.1:PORT (Claude Code appends /v1/messages)
#   KEY       sent as `Authorization: Bearer KEY` (ANTHROPIC_AUTH_TOKEN)
#   MODEL     model slug sent in every request, e.g. anthropic/claude-sonnet-4.5 (all model tiers,
#             incl. the small/fast one, are pinned to it)
#   PROMPT    the prompt for `claude -p`
#   extra     NAME=VALUE adds/overrides an environment variable of the agent (e.g.
#             CLAUDE_CODE_MAX_OUTPUT_TOKENS=2048, CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1);
#             anything else is passed to `claude` as an argument.
#
# Prints the agent's stdout (the model's text; on API errors Claude Code prints "API Error: ..."
# there too) and stderr, and exits with the agent's exit code (0 ok, 1 API error, 124 timeout).
# ORTEAM_AGENT_TIMEOUT (seconds, default 120) bounds the run; ORTEAM_AGENT_KEEP=1 keeps the temp dir.
set -uo pipefail
if [ "$#" -lt 5 ]; then
  echo "usage: $0 BIN_DIR BASE_URL KEY MODEL PROMPT [NAME=VALUE | arg]..." >&2
  exit 2
fi
bin_dir=$1 base_url=${2%/} key=$3 model=$4 prompt=$5
shift 5
if [ ! -x "$bin_dir/claude" ]; then
  echo "claude_code.sh: no executable $bin_dir/claude (run scripts/agents-env.sh)" >&2
  exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/orteam-claude.XXXXXX")
cleanup() { [ "${ORTEAM_AGENT_KEEP:-}" = 1 ] && echo "claude_code.sh: kept $tmp" >&2 || rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/home" "$tmp/work"

envs=(
  PATH="$bin_dir:/usr/local/bin:/usr/bin:/bin"
  HOME="$tmp/home"
  TMPDIR="$tmp"
  TERM=dumb
  LANG=C.UTF-8
  ANTHROPIC_BASE_URL="$base_url"
  ANTHROPIC_AUTH_TOKEN="$key"
  # The one switch that matters for "loopback only": turns off telemetry, auto-update,
  # error reporting, feature flags and the HEAD connectivity probe. The rest is belt and braces.
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
  DISABLE_TELEMETRY=1
  DISABLE_AUTOUPDATER=1
  DISABLE_ERROR_REPORTING=1
  # Pin every model tier so each request carries MODEL.
  ANTHROPIC_MODEL="$model"
  ANTHROPIC_DEFAULT_OPUS_MODEL="$model"
  ANTHROPIC_DEFAULT_SONNET_MODEL="$model"
  ANTHROPIC_DEFAULT_HAIKU_MODEL="$model"
  ANTHROPIC_SMALL_FAST_MODEL="$model"
  CLAUDE_CODE_SUBAGENT_MODEL="$model"
)
args=()
for a in "$@"; do
  if [[ "$a" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then envs+=("$a"); else args+=("$a"); fi
done

cd "$tmp/work"
timeout --kill-after=10 "${ORTEAM_AGENT_TIMEOUT:-120}" env -i "${envs[@]}" \
  "$bin_dir/claude" -p "$prompt" --model "$model" "${args[@]}" < /dev/null
rc=$?
[ "$rc" = 124 ] && echo "claude_code.sh: timed out after ${ORTEAM_AGENT_TIMEOUT:-120}s" >&2
exit "$rc"
