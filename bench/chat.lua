-- wrk script: POST a small request of one route and print exact percentiles (µs) and
-- throughput. ROUTE (env): chat (default), messages, responses, embeddings, completions.
-- KEY (env) is the bearer token; MODEL (env) the model; MAX_TOKENS (env) the answer cap;
-- EXTRA (env) more top-level fields, e.g. ',"user":"loadgen"'.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "none")
local route = os.getenv("ROUTE") or "chat"
local model = os.getenv("MODEL") or "openai/gpt-4o-mini"
local max_tokens = os.getenv("MAX_TOKENS") or "16"
local prompt = '"Say hello in a few words."'
local inputs = {
  chat = '"messages":[{"role":"user","content":' .. prompt .. '}],"max_tokens":' .. max_tokens,
  messages = '"messages":[{"role":"user","content":' .. prompt .. '}],"max_tokens":' .. max_tokens,
  responses = '"input":' .. prompt .. ',"max_output_tokens":' .. max_tokens,
  embeddings = '"input":' .. prompt,
  completions = '"prompt":' .. prompt .. ',"max_tokens":' .. max_tokens,
}
if route == "embeddings" and not os.getenv("MODEL") then model = "openai/text-embedding-3-small" end
wrk.body = string.format('{"model":"%s",%s%s}', model, inputs[route],
  ((os.getenv("STREAM") == "1") and ',"stream":true' or "") .. (os.getenv("EXTRA") or ""))

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT p50_us=%d p99_us=%d rps=%.0f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests, errors))
end
