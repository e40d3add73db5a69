"""A member's point of view: the official OpenAI Python SDK pointed at an orteam gateway.

Usage: python openai_sdk.py BASE_URL API_KEY
"""
import sys

import openai
from openai import OpenAI

base_url, api_key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)

# Non-stream.
r = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "Say hello [[sim:tokens=7]]"}],
    max_tokens=20,
)
assert r.choices[0].message.role == "assistant", r
assert len(r.choices[0].message.content.split()) == 7, r
assert r.usage.completion_tokens == 7, r.usage

# Stream, with the usage chunk asked for.
stream = client.chat.completions.create(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "Say hello [[sim:tokens=9]]"}],
    max_tokens=20,
    stream=True,
    stream_options={"include_usage": True},
)
text, usage = "", None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
    if chunk.usage:
        usage = chunk.usage
assert len(text.split()) == 9, text
assert usage is not None and usage.completion_tokens == 9, usage

# Raw response headers carry orteam's decisions.
raw = client.chat.completions.with_raw_response.create(
    model="openai/gpt-4o-mini",
    messages=[{"role": "user", "content": "hi"}],
)
assert raw.headers.get("x-orteam-max-tokens"), dict(raw.headers)

# Errors arrive as the SDK's typed exceptions.
try:
    client.chat.completions.create(model="nope/nothing", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("unknown model accepted")
except openai.BadRequestError as e:
    assert e.body["code"] == "model_not_found", e.body
try:
    OpenAI(base_url=base_url, api_key="ot-wrong", max_retries=0).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    raise AssertionError("bad key accepted")
except openai.AuthenticationError:
    pass

ids = [m.id for m in client.models.list()]
assert "openai/gpt-4o-mini" in ids, ids
print("OK")
