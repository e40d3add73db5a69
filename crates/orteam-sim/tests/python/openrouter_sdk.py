"""The official OpenRouter Python SDK against the simulator: every management method the
orteam-openrouter client covers, and chat in each mode, with the SDK's own response validation.

Usage: openrouter_sdk.py <api base url ending in /api/v1> <management key> <sim root url>

Every call runs even when an earlier one fails, so one run lists every disagreement. Prints one
line per SDK method (`ok  method` or `FAIL method: error`) and `OK` last when all passed.
"""

import json
import sys
import traceback

import httpx
from openrouter import OpenRouter, components
from openrouter.utils import unmarshal_json

BASE, MGMT, SIM_ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
RESULTS = []


def check(name, fn):
    """Runs one SDK call; records ok or the validation/HTTP error; returns the result or None."""
    try:
        out = fn()
        RESULTS.append((name, None))
        return out
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        detail = f"{type(e).__name__}: {e}"
        RESULTS.append((name, detail[:2000]))
        traceback.print_exc(file=sys.stderr)
        return None


def data(resp):
    """The `data` of an answer; paginated methods wrap theirs in `result`."""
    return resp.result.data if hasattr(resp, "result") else resp.data


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


mgmt = OpenRouter(api_key=MGMT, server_url=BASE)
sim = httpx.Client(base_url=SIM_ROOT)

# ---- workspaces -------------------------------------------------------------------------
members = check("organization.list_members", lambda: mgmt.organization.list_members(limit=10))
user_ids = [m.id for m in data(members)] if members else []
expect_user = user_ids[0] if user_ids else "user_missing"

ws = check(
    "workspaces.create",
    lambda: mgmt.workspaces.create(name="Research", slug="research", description="the lab"),
)
ws_id = ws.data.id if ws else "missing"
check("workspaces.list", lambda: mgmt.workspaces.list(limit=10))
check("workspaces.get", lambda: mgmt.workspaces.get(id=ws_id))
check(
    "workspaces.update",
    lambda: expect(
        mgmt.workspaces.update(id=ws_id, description="the research lab").data.description
        == "the research lab",
        "update did not change the description",
    ),
)
check(
    "workspaces.bulk_add_members",
    lambda: mgmt.workspaces.bulk_add_members(id=ws_id, user_ids=[expect_user]),
)
check(
    "workspaces.list_members",
    lambda: expect(
        [m.user_id for m in data(mgmt.workspaces.list_members(id=ws_id))] == [expect_user],
        "member not listed",
    ),
)
check(
    "workspaces.bulk_remove_members",
    lambda: mgmt.workspaces.bulk_remove_members(id=ws_id, user_ids=[expect_user]),
)

# ---- keys ---------------------------------------------------------------------------------
created = check(
    "api_keys.create",
    lambda: mgmt.api_keys.create(
        name="sdk-key",
        limit=5.0,
        limit_reset="daily",
        creator_user_id=expect_user,
        workspace_id=ws_id,
    ),
)
key_hash = created.data.hash if created else "missing"
secret = created.key if created else "missing"
check("api_keys.list", lambda: mgmt.api_keys.list(include_disabled="true"))
check("api_keys.list(workspace_id)", lambda: mgmt.api_keys.list(workspace_id=ws_id))
check("api_keys.get", lambda: mgmt.api_keys.get(hash=key_hash))
check("api_keys.update", lambda: mgmt.api_keys.update(hash=key_hash, name="sdk-key-2", limit=6.0))
check("api_keys.get_current_key_metadata (management)", mgmt.api_keys.get_current_key_metadata)
check("credits.get_credits", mgmt.credits.get_credits)

inference = OpenRouter(api_key=secret, server_url=BASE)
check("api_keys.get_current_key_metadata (inference)", inference.api_keys.get_current_key_metadata)

# ---- models -------------------------------------------------------------------------------
models = check("models.list", lambda: mgmt.models.list())
check("models.list(limit, offset)", lambda: mgmt.models.list(limit=2, offset=1))
check("models.list_for_user", lambda: inference.models.list_for_user(security={"bearer": secret}))
check("models.count", lambda: mgmt.models.count())
check("models.get", lambda: mgmt.models.get(author="openai", slug="gpt-4o-mini"))
check("endpoints.list", lambda: mgmt.endpoints.list(author="openai", slug="gpt-4o-mini"))
check("endpoints.list_zdr_endpoints", mgmt.endpoints.list_zdr_endpoints)

# ---- chat ---------------------------------------------------------------------------------
MODEL = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "Say hello"}]

plain = check("chat.send", lambda: inference.chat.send(model=MODEL, messages=HELLO, max_tokens=30))


def stream():
    chunks = list(inference.chat.send(model=MODEL, messages=HELLO, stream=True))
    expect(any(c.usage is not None for c in chunks), "no usage chunk")
    expect(
        any(ch.finish_reason is not None for c in chunks for ch in c.choices), "no finish_reason"
    )


check("chat.send(stream=True)", stream)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


def forced_tool():
    r = inference.chat.send(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = r.choices[0]
    expect(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason}")
    calls = choice.message.tool_calls or []
    expect(len(calls) == 1 and calls[0].function.name == "get_weather", f"tool_calls {calls}")
    args = json.loads(calls[0].function.arguments)
    expect(isinstance(args.get("city"), str) and isinstance(args.get("days"), int), f"args {args}")


check("chat.send(tools, tool_choice=function)", forced_tool)


def required_tool():
    r = inference.chat.send(model=MODEL, messages=HELLO, tools=[WEATHER], tool_choice="required")
    expect(r.choices[0].message.tool_calls, "no tool_calls for tool_choice=required")


check("chat.send(tools, tool_choice=required)", required_tool)


def json_object():
    r = inference.chat.send(
        model=MODEL, messages=HELLO, response_format={"type": "json_object"}, max_tokens=200
    )
    expect(isinstance(json.loads(r.choices[0].message.content), dict), "not a JSON object")


check("chat.send(response_format=json_object)", json_object)

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "ok": {"type": "boolean"},
    },
    "required": ["name", "age", "tags", "ok"],
    "additionalProperties": False,
}


def json_schema():
    r = inference.chat.send(
        model=MODEL,
        messages=HELLO,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": SCHEMA},
        },
        max_tokens=200,
    )
    v = json.loads(r.choices[0].message.content)
    expect(set(v) == {"name", "age", "tags", "ok"}, f"keys {v}")
    expect(
        isinstance(v["name"], str)
        and isinstance(v["age"], int)
        and isinstance(v["tags"], list)
        and isinstance(v["ok"], bool),
        f"types {v}",
    )


check("chat.send(response_format=json_schema)", json_schema)


def stop_sequence():
    r = inference.chat.send(model=MODEL, messages=HELLO, max_tokens=60)
    words = r.choices[0].message.content.split()
    cut = words[2]
    s = inference.chat.send(model=MODEL, messages=HELLO, max_tokens=60, stop=[cut])
    expect(s.choices[0].finish_reason == "stop", f"finish_reason {s.choices[0].finish_reason}")
    expect(cut not in s.choices[0].message.content.split(), "stop sequence not honoured")


check("chat.send(stop)", stop_sequence)


def n_choices():
    # The SDK's ChatRequest has no `n`; send it raw and validate the answer with the SDK's model.
    resp = httpx.post(
        f"{BASE}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": MODEL, "messages": HELLO, "n": 3, "max_tokens": 20},
    )
    expect(resp.status_code == 200, f"status {resp.status_code}: {resp.text}")
    r = unmarshal_json(resp.text, components.ChatResult)
    expect([c.index for c in r.choices] == [0, 1, 2], f"indices {[c.index for c in r.choices]}")


check("chat (n=3, validated as components.ChatResult)", n_choices)


def length_cut():
    r = inference.chat.send(model=MODEL, messages=HELLO, max_tokens=2)
    expect(r.choices[0].finish_reason == "length", f"finish_reason {r.choices[0].finish_reason}")


check("chat.send(max_tokens=2) finish_reason=length", length_cut)

gen_id = plain.id if plain else "missing"
check("generations.get_generation", lambda: inference.generations.get_generation(id=gen_id))

# ---- activity: move the clock past midnight so today's spend is a completed day -----------
sim.post("/__sim/clock", json={"advance_seconds": 86400})
check("analytics.get_user_activity", lambda: mgmt.analytics.get_user_activity())


def activity_by_user():
    rows = data(mgmt.analytics.get_user_activity(request={"user_id": expect_user}))
    expect(rows and sum(r.requests for r in rows) > 0, "no rows for the key's creator")
    other = user_ids[1] if len(user_ids) > 1 else "user_nobody"
    expect(data(mgmt.analytics.get_user_activity(request={"user_id": other})) == [], "leak")


check("analytics.get_user_activity(user_id)", activity_by_user)
check(
    "analytics.get_user_activity(api_key_hash)",
    lambda: mgmt.analytics.get_user_activity(request={"api_key_hash": key_hash}),
)

# ---- guardrails ---------------------------------------------------------------------------
g = check(
    "guardrails.create",
    lambda: mgmt.guardrails.create(
        name="tier-basic",
        description="basic tier",
        allowed_models=[MODEL],
        limit_usd=10.0,
        reset_interval="monthly",
        include_byok_in_budgets=False,
        workspace_id=ws_id,
    ),
)
gid = g.data.id if g else "missing"
check("guardrails.list", lambda: mgmt.guardrails.list())
check("guardrails.list(workspace_id)", lambda: mgmt.guardrails.list(workspace_id=ws_id))
check("guardrails.get", lambda: mgmt.guardrails.get(id=gid))
check("guardrails.update", lambda: mgmt.guardrails.update(id=gid, limit_usd=12.5))
check("guardrails.bulk_assign_keys", lambda: mgmt.guardrails.bulk_assign_keys(id=gid, key_hashes=[key_hash]))
check(
    "guardrails.bulk_assign_members",
    lambda: mgmt.guardrails.bulk_assign_members(id=gid, member_user_ids=[expect_user]),
)
check("guardrails.list_key_assignments", lambda: mgmt.guardrails.list_key_assignments())
check("guardrails.list_member_assignments", lambda: mgmt.guardrails.list_member_assignments())
check(
    "guardrails.list_guardrail_key_assignments",
    lambda: mgmt.guardrails.list_guardrail_key_assignments(id=gid),
)
check(
    "guardrails.list_guardrail_member_assignments",
    lambda: mgmt.guardrails.list_guardrail_member_assignments(id=gid),
)
check(
    "guardrails.bulk_unassign_keys",
    lambda: mgmt.guardrails.bulk_unassign_keys(id=gid, key_hashes=[key_hash]),
)
check(
    "guardrails.bulk_unassign_members",
    lambda: mgmt.guardrails.bulk_unassign_members(id=gid, member_user_ids=[expect_user]),
)
check("guardrails.delete", lambda: mgmt.guardrails.delete(id=gid))

# ---- clean up -----------------------------------------------------------------------------
check("api_keys.delete", lambda: mgmt.api_keys.delete(hash=key_hash))
check("workspaces.delete", lambda: mgmt.workspaces.delete(id=ws_id))


def bad_pagination():
    r = httpx.get(f"{BASE}/guardrails?limit=0", headers={"Authorization": f"Bearer {MGMT}"})
    expect(r.status_code == 400, f"status {r.status_code}")
    body = r.json()
    expect(body["error"]["code"] == 400 and body["error"]["message"], f"body {body}")


check("bad pagination → 400 in OpenRouter's error shape", bad_pagination)

failed = [(n, e) for n, e in RESULTS if e]
for name, err in RESULTS:
    print(f"{'ok  ' if err is None else 'FAIL'} {name}{'' if err is None else ': ' + err}")
print(f"{len(RESULTS) - len(failed)}/{len(RESULTS)} SDK calls validated")
if not failed:
    print("OK")
sys.exit(1 if failed else 0)
