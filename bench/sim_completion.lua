-- wrk script: small non-streamed chat completions against the simulator.
-- Needs SIM_KEY (an inference key) in the environment; prints exact percentiles in microseconds.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("SIM_KEY") or "")
wrk.body = '{"model":"openai/gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello in a few words."}]}'

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("requests=%d duration=%.2fs req/s=%.0f\n", summary.requests, secs, summary.requests / secs))
  io.write(string.format("p50=%dus p90=%dus p99=%dus max=%dus\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  local e = summary.errors
  io.write(string.format("errors: connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
end
