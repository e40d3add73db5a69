-- wrk script: POST a small chat completion and print exact percentiles (µs) and throughput.
-- KEY (env) is the bearer token; MODEL (env) the model; MAX_TOKENS (env) the answer cap;
-- EXTRA (env) more top-level fields, e.g. ',"user":"loadgen"'.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "none")
wrk.body = string.format(
  '{"model":"%s","messages":[{"role":"user","content":"Say hello in a few words."}],"max_tokens":%s%s}',
  os.getenv("MODEL") or "openai/gpt-4o-mini", os.getenv("MAX_TOKENS") or "16",
  ((os.getenv("STREAM") == "1") and ',"stream":true' or "") .. (os.getenv("EXTRA") or ""))

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT p50_us=%d p99_us=%d rps=%.0f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests, errors))
end
