"""Claude Code's wire format through orteam: the official Anthropic Python SDK pointed at the
gateway's root, as a member would use it.

Usage: python anthropic_sdk.py ROOT_URL MEMBER_KEY BROKE_KEY
  MEMBER_KEY: a member whose tier allows every model and who has budget left
  BROKE_KEY:  a member allowed only openai/gpt-4o-mini, with a budget too small for any answer
"""
import sys

import anthropic
from anthropic import Anthropic

root, key, broke_key = sys.argv[1], sys.argv[2], sys.argv[3]
MODEL = "openai/gpt-4o-mini"

# Both of Anthropic's auth styles: x-api-key (api_key) and Bearer (auth_token).
for client in (
    Anthropic(base_url=root, api_key=key, max_retries=0),
    Anthropic(base_url=root, auth_token=key, max_retries=0),
):
    m = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hello [[sim:tokens=7]]"}],
    )
    assert m.type == "message" and m.role == "assistant", m
    assert m.content[0].type == "text" and len(m.content[0].text.split()) == 7, m.content
    assert m.usage.output_tokens == 7, m.usage
    assert m.stop_reason == "end_turn", m.stop_reason

# Streaming, through the SDK's event accumulator.
with client.messages.stream(
    model=MODEL,
    max_tokens=64,
    messages=[{"role": "user", "content": "Say hello [[sim:tokens=9]]"}],
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert len(text.split()) == 9, text
assert final.usage.output_tokens == 9, final.usage

# Tool use: a forced tool comes back as a tool_use block.
tools = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
m = client.messages.create(
    model=MODEL,
    max_tokens=64,
    tools=tools,
    tool_choice={"type": "tool", "name": "get_weather"},
    messages=[{"role": "user", "content": "Weather in Paris?"}],
)
assert m.stop_reason == "tool_use", m
assert any(b.type == "tool_use" and b.name == "get_weather" for b in m.content), m.content

# count_tokens is answered and never billed.
count = client.messages.count_tokens(
    model=MODEL, messages=[{"role": "user", "content": "How many tokens is this?"}]
)
assert count.input_tokens > 0, count

# The clamp is visible in the raw response's headers.
raw = client.messages.with_raw_response.create(
    model=MODEL, max_tokens=20_000, messages=[{"role": "user", "content": "hi"}]
)
clamped = int(raw.headers["x-orteam-max-tokens"])
assert 0 < clamped < 20_000, clamped  # gpt-4o-mini answers at most 16,384 tokens
raw.parse()

# Errors arrive as the SDK's typed exceptions.
try:
    Anthropic(base_url=root, api_key="ot-wrong", max_retries=0).messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("bad key accepted")
except anthropic.AuthenticationError as e:
    assert e.body["error"]["type"] == "authentication_error", e.body
broke = Anthropic(base_url=root, api_key=broke_key, max_retries=0)
try:
    broke.messages.create(
        model="openai/gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("model outside the tier accepted")
except anthropic.PermissionDeniedError as e:
    assert e.body["error"]["type"] == "permission_error", e.body
try:
    broke.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    raise AssertionError("request over budget accepted")
except anthropic.APIStatusError as e:
    assert e.status_code == 402, e.status_code
    assert e.body["error"]["type"] == "billing_error", e.body
    assert e.response.headers["x-should-retry"] == "false"
try:
    client.messages.create(model="nope/nothing", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    raise AssertionError("unknown model accepted")
except anthropic.NotFoundError as e:
    assert e.body["error"]["type"] == "not_found_error", e.body

models = client.models.list()
assert MODEL in [m.id for m in models.data], models
print("OK")
