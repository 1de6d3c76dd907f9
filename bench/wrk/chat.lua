-- wrk script for bench/overhead.py: POST one small chat completion per request.
--   wrk ... -s bench/wrk/chat.lua URL -- stream|plain API_KEY
-- Prints one machine-readable line at the end:
--   BENCH_RESULT {"requests":..,"duration_us":..,"p50_us":..,"p99_us":..,"errors":{..}}
-- wrk counts a response with status > 399 as a "status" error.

local PLAIN = '{"model":"bench","messages":[{"role":"user","content":"Say hi"}]}'
local STREAM = '{"model":"bench","messages":[{"role":"user","content":"Say hi"}],"stream":true}'

function init(args)
   wrk.method = "POST"
   wrk.body = (args[1] == "stream") and STREAM or PLAIN
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. (args[2] or "sk-bench")
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.1f,' ..
      '"p99_us":%.1f,"mean_us":%.1f,"max_us":%.1f,"errors":{"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50),
      latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write,
      e.status, e.timeout))
end
