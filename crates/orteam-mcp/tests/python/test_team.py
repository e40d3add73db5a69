"""The orteam MCP team tools driven by the official Python MCP SDK, on a ledger.

Run by the Rust test `python::python_sdk_reads_the_team_tools`, which seeds a ledger (alice
$0.10 + $0.25 today with a $5 daily budget, bob $0.002) and sets ORTEAM_MCP_BIN,
ORTEAM_DATABASE_URL, OPENROUTER_BASE_URL and OPENROUTER_PROVISIONING_KEY.
"""

import asyncio
import datetime
import json
import os

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def is_error(result):
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def run(fn):
    async def main():
        env = dict(os.environ)
        env.pop("OPENROUTER_ADMIN_ALLOW_WRITE", None)
        params = StdioServerParameters(command=os.environ["ORTEAM_MCP_BIN"], args=[], env=env)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await fn(session)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


async def call(session, tool, args):
    r = await session.call_tool(tool, args)
    assert len(r.content) == 1
    body = r.content[0].text
    assert not is_error(r), f"{tool}({args}): {body}"
    # No null noise anywhere.
    assert "null" not in body, body
    return json.loads(body)


MONEY = {"cost", "limit", "base_limit", "raised", "spent", "held", "remaining", "spend"}


def money_fields(v, out):
    """Every (field, value) of a money field in a result."""
    if isinstance(v, dict):
        for k, x in v.items():
            if k in MONEY:
                out.append((k, x))
            else:
                money_fields(x, out)
    elif isinstance(v, list):
        for x in v:
            money_fields(x, out)
    return out


def test_team_tools_speak_like_the_cli():
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    async def fn(session):
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"team_spend", "team_budget_status", "team_anomalies", "team_audit"} <= names

        # Every budget with its percent used; money as the CLI shows it.
        v = await call(session, "team_budget_status", {})
        assert v["budgets"], v
        for b in v["budgets"]:
            assert b["used_percent"].endswith("%") or b["used_percent"] == "-", b
        alice = next(b for b in v["budgets"] if b["id"] == "alice" and b["window"] == "daily")
        assert alice["limit"] == "$5.00", alice
        assert alice["spent"] == "$0.35", alice
        assert alice["used_percent"] == "7%", alice

        # team_spend: the CLI's defaults (month, no grouping: a total per source) ...
        v = await call(session, "team_spend", {})
        assert v["group_by"] == [], v
        assert v["totals"]["cost"] == "$0.352", v
        # ... and its arguments: period, by, since/until.
        by_period = await call(session, "team_spend", {"period": "today", "by": ["member"]})
        costs = {r["member"]: r["cost"] for r in by_period["rows"]}
        assert costs == {"alice": "$0.35", "bob": "$0.002"}, by_period
        by_dates = await call(
            session, "team_spend", {"since": today, "until": today, "by": ["member"]}
        )
        assert by_dates["rows"] == by_period["rows"], (by_dates, by_period)
        for field, value in money_fields([by_period, by_dates], []):
            assert value.startswith("$"), (field, value)

        r = await session.call_tool("team_spend", {"period": "month", "since": today})
        assert is_error(r) and "not both" in r.content[0].text

        v = await call(session, "team_anomalies", {})
        assert v["flagged"] == [], v
        v = await call(session, "team_audit", {"since": "7d"})
        assert v["chain_intact"] is True, v
        r = await session.call_tool("team_audit", {"since": "last tuesday"})
        assert is_error(r) and "neither an RFC 3339 time" in r.content[0].text

    run(fn)
