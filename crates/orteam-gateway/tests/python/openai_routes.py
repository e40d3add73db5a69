"""Codex's and RAG code's wire formats through orteam: the official OpenAI Python SDK's
Responses, embeddings and legacy completions APIs pointed at the gateway.

Usage: python openai_routes.py BASE_URL MEMBER_KEY BROKE_KEY
"""
import sys

import openai
from openai import OpenAI

base_url, key, broke_key = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url, api_key=key, max_retries=0)
MODEL = "openai/gpt-4o-mini"

# Responses, plain.
r = client.responses.create(
    model=MODEL,
    instructions="Be terse.",
    input="Say hello [[sim:tokens=7]]",
    max_output_tokens=64,
    store=False,
)
assert r.status == "completed", r
assert len(r.output_text.split()) == 7, r.output_text
assert r.usage.output_tokens == 7, r.usage

# Responses, streamed, with input items as Codex sends them.
events = []
with client.responses.stream(
    model=MODEL,
    input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello [[sim:tokens=9]]"}]}],
    store=False,
) as stream:
    for event in stream:
        events.append(event.type)
    final = stream.get_final_response()
assert events[0] == "response.created" and "response.completed" in events, events
assert len(final.output_text.split()) == 9, final.output_text
assert final.usage.output_tokens == 9, final.usage

# Responses without a cap get one, announced.
raw = client.responses.with_raw_response.create(model=MODEL, input="hi", store=False)
assert int(raw.headers["x-orteam-max-tokens"]) > 0
raw.parse()

# Embeddings: one vector per input.
e = client.embeddings.create(model="openai/text-embedding-3-small", input=["one", "two", "three"])
assert len(e.data) == 3 and all(len(d.embedding) > 0 for d in e.data), e
assert e.usage.prompt_tokens > 0, e.usage

# Legacy completions, plain and streamed.
c = client.completions.create(model=MODEL, prompt="Once upon a time [[sim:tokens=5]]", max_tokens=20)
assert len(c.choices[0].text.split()) == 5, c
assert c.usage.completion_tokens == 5, c.usage
text = ""
for chunk in client.completions.create(
    model=MODEL, prompt="Once upon a time [[sim:tokens=6]]", max_tokens=20, stream=True
):
    if chunk.choices:
        text += chunk.choices[0].text
assert len(text.split()) == 6, text

# An exhausted budget on Responses is OpenAI's own quota error (what Codex stops on).
broke = OpenAI(base_url=base_url, api_key=broke_key, max_retries=0)
try:
    broke.responses.create(model=MODEL, input="x", store=False)
    raise AssertionError("request over budget accepted")
except openai.RateLimitError as err:
    assert err.code == "insufficient_quota", err.body
try:
    broke.embeddings.create(model="openai/text-embedding-3-small", input="x")
    raise AssertionError("embedding outside the tier accepted")
except openai.PermissionDeniedError:
    pass
print("OK")
