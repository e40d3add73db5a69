"""A member asks "how much is left?" through orteam: spends with the official OpenAI SDK, then
reads the current key with the official OpenRouter SDK (`get_current_key_metadata`) and with the
OpenAI SDK's raw GET. Prints OK, then one JSON line of the figures it read.

Usage: python current_key.py BASE_URL (…/v1) ROOT_URL API_KEY
"""
import json
import re
import sys

import httpx
from openai import OpenAI
from openrouter import OpenRouter

base_url, root_url, api_key = sys.argv[1], sys.argv[2], sys.argv[3]

client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
for tokens in (11, 23):
    r = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": f"Say hello [[sim:tokens={tokens}]]"}],
        max_tokens=40,
    )
    assert r.usage.completion_tokens == tokens, r.usage

# The OpenAI SDK's generic GET, read raw so the exact decimal text is kept.
raw = client.get("/key", cast_to=httpx.Response)
assert raw.status_code == 200, raw.text
usage_text = re.search(r'"usage":([0-9.eE-]+)', raw.text).group(1)

# The official OpenRouter SDK validates the whole answer against its models.
with OpenRouter(api_key=api_key, server_url=root_url + "/api/v1") as orc:
    key = orc.api_keys.get_current_key_metadata()
d = key.data
assert d.is_management_key is False
assert d.effective_budget is not None and d.effective_budget.scope == "member", d.effective_budget
assert d.organization_id == "acme" and d.workspace_id == "core", d

print("OK")
print(json.dumps({
    "openrouter_usage": d.usage,
    "openrouter_limit": d.limit,
    "openrouter_limit_remaining": d.limit_remaining,
    "openrouter_budgets": len(d.budgets),
    "openai_usage_text": usage_text,
}))
