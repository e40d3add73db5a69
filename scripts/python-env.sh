#!/usr/bin/env bash
# Creates (once) the Python environment the tests drive orteam with: the official `openai`
# SDK and the official `anthropic` SDK (gateway tests), the official `mcp` SDK (MCP tests) and
# the official `openrouter` SDK (the oracle the simulator and the gateway are checked against)
# and `opentelemetry-proto` (decodes what the gateway exports over OTLP).
# Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${ORTEAM_PYENV:-target/pyenv}"
want="openai==3.54.0 anthropic==2.10.0 mcp==2.3.0 pytest==9.2.0 openrouter==1.3.84 opentelemetry-proto==1.45.2"
stamp="$venv/.orteam-requirements"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "python-env: installing $want" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check $want >&2
  echo "$want" > "$stamp"
fi
echo "$(cd "$venv" && pwd)/bin/python"
