"""A member's point of view: the official OpenRouter Python SDK pointed at an orteam gateway,
with the SDK's own response validation on.

Usage: python openrouter_sdk.py ROOT_URL KEY_OF_AN_UNRESTRICTED_MEMBER KEY_OF_A_STRICT_MEMBER STRICT_MODELS
(STRICT_MODELS: the comma-separated models the strict member's tier allows)
"""
import sys

from openrouter import OpenRouter, errors

root, wide_key, strict_key, strict_models = sys.argv[1:5]
strict_models = sorted(strict_models.split(","))


def page(resp):
    """The list itself; paginated methods wrap it in `result`."""
    return resp.result if hasattr(resp, "result") else resp


def ids(resp):
    return sorted(m.id for m in page(resp).data)


for prefix in ("/api/v1", "/v1"):
    wide = OpenRouter(api_key=wide_key, server_url=root + prefix)
    strict = OpenRouter(api_key=strict_key, server_url=root + prefix)

    # models.list: OpenRouter's shape, only what the caller's tier allows.
    everything = page(wide.models.list())
    assert everything.total_count == len(everything.data) > len(strict_models), everything
    allowed = strict.models.list()
    assert ids(allowed) == strict_models, (prefix, ids(allowed))
    assert page(allowed).total_count == len(strict_models), allowed

    # chat.send, plain and streamed, through the gateway.
    r = strict.chat.send(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "Say hello [[sim:tokens=7]]"}],
        max_tokens=20,
    )
    assert r.choices[0].finish_reason == "stop", r
    assert len(r.choices[0].message.content.split()) == 7, r
    assert r.usage.completion_tokens == 7, r.usage

    chunks = list(
        strict.chat.send(
            model="openai/gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello [[sim:tokens=5]]"}],
            max_tokens=20,
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 5, text

# A model outside the strict tier: refused by orteam, and the SDK reports it as an error.
try:
    strict.chat.send(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("a model outside the tier was served")
except errors.OpenRouterError as e:
    assert e.status_code == 403, e

print("OK")
