"""The orteam MCP stdio server driven by the official Python MCP SDK.

Run by the Rust test `python::python_sdk_talks_to_the_stdio_binary`, which starts a simulator
and sets ORTEAM_MCP_BIN, OPENROUTER_BASE_URL and OPENROUTER_PROVISIONING_KEY.
"""

import asyncio
import os

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

try:  # SDK 2.x
    from mcp.shared.exceptions import MCPError as ProtocolError
except ImportError:  # SDK 1.x
    from mcp.shared.exceptions import McpError as ProtocolError


def field(obj, snake, camel):
    """SDK 2.x uses snake_case attributes, 1.x camelCase."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def is_error(result):
    return bool(field(result, "is_error", "isError"))

READ_TOOLS = {
    "or_overview", "or_credits", "or_current_key", "or_keys_list", "or_key_get",
    "or_activity", "or_generation", "or_models", "or_model_get", "or_model_endpoints",
    "or_models_user", "or_zdr_endpoints", "or_guardrails_list", "or_guardrail_get",
    "or_guardrails_assignments", "or_org_members",
}
WRITE_TOOLS = {
    "or_key_create", "or_key_update", "or_key_delete", "or_guardrail_create",
    "or_guardrail_update", "or_guardrail_delete", "or_guardrail_assign_keys",
    "or_guardrail_unassign_keys", "or_guardrail_assign_members",
    "or_guardrail_unassign_members",
}


def _env(allow_write):
    env = dict(os.environ)
    env.pop("OPENROUTER_ADMIN_ALLOW_WRITE", None)
    if allow_write:
        env["OPENROUTER_ADMIN_ALLOW_WRITE"] = "yes"
    return env


def run(fn, allow_write=False):
    async def main():
        params = StdioServerParameters(
            command=os.environ["ORTEAM_MCP_BIN"], args=[], env=_env(allow_write)
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert field(init, "server_info", "serverInfo").name == "orteam"
                return await fn(session)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


def text(result):
    assert len(result.content) == 1
    return result.content[0].text


def no_key(s):
    assert os.environ["OPENROUTER_PROVISIONING_KEY"] not in s


def test_read_only_lists_read_tools():
    async def fn(session):
        tools = await session.list_tools()
        names = {t.name for t in tools.tools}
        assert names == READ_TOOLS
        for t in tools.tools:
            assert t.description and len(t.description) > 60
            assert field(t, "input_schema", "inputSchema")["type"] == "object"

    run(fn)


def test_read_tools_and_errors():
    async def fn(session):
        r = await session.call_tool("or_credits", {})
        assert not is_error(r)
        assert text(r).startswith("Credits:\n- Purchased: $100.0000")

        r = await session.call_tool("or_models", {"search": "claude"})
        assert not is_error(r)
        assert "anthropic/" in text(r)

        r = await session.call_tool("or_org_members", {"limit": 2})
        assert not is_error(r) and text(r).startswith("Organization members (2):")

        r = await session.call_tool("or_key_get", {"hash": "does-not-exist"})
        assert is_error(r)
        assert "(404)" in text(r)
        no_key(text(r))

        r = await session.call_tool("or_activity", {"aggregate": "sideways"})
        assert is_error(r)
        assert "sideways" in text(r)

        with pytest.raises(ProtocolError) as err:
            await session.call_tool("or_key_delete", {"hash": "x"})
        assert "OPENROUTER_ADMIN_ALLOW_WRITE=1" in str(err.value)
        no_key(str(err.value))

        r = await session.call_tool("or_overview", {})
        assert not is_error(r) and text(r).startswith("Account: $")
        no_key(text(r))

    run(fn)


def test_write_mode_creates_and_deletes_a_key():
    async def fn(session):
        tools = await session.list_tools()
        assert {t.name for t in tools.tools} == READ_TOOLS | WRITE_TOOLS
        r = await session.call_tool(
            "or_key_create", {"name": "py", "limit": 1.25, "limit_reset": "monthly"}
        )
        assert not is_error(r), text(r)
        body = text(r)
        assert "Limit: $1.25 (resets monthly)" in body
        assert "Secret: `sk-or-v1-" in body
        no_key(body)
        key_hash = next(l for l in body.splitlines() if l.startswith("Hash: "))[6:]
        r = await session.call_tool("or_key_delete", {"hash": key_hash})
        assert text(r) == f"Deleted key with hash {key_hash}."

    run(fn, allow_write=True)
