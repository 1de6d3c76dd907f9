-- wrk script for bench/overhead.py: POST one small chat completion per request.
--   wrk ... -s bench/wrk/chat.lua URL -- stream|plain|long API_KEY
-- (long: a stream of 500 chunks, "max_tokens":500 to bench/fake_upstream.py)
-- Prints one machine-readable line at the end:
--   BENCH_RESULT {"requests":..,"duration_us":..,"p50_us":..,"p99_us":..,"errors":{..},
--                 "distribution_us":[[percentile, latency_us], ..]}
-- wrk counts a response with status > 399 as a "status" error.

local PLAIN = '{"model":"bench","messages":[{"role":"user","content":"Say hi"}]}'
local STREAM = '{"model":"bench","messages":[{"role":"user","content":"Say hi"}],"stream":true}'
local LONG = '{"model":"bench","messages":[{"role":"user","content":"Say hi"}],"stream":true,' ..
             '"max_tokens":500}'

function init(args)
   wrk.method = "POST"
   local bodies = {plain = PLAIN, stream = STREAM, long = LONG}
   wrk.body = bodies[args[1]] or PLAIN
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. (args[2] or "sk-bench")
end

-- the latency distribution: every half percentile, then the tail more finely
local function distribution(latency)
   local ps = {}
   for i = 1, 198 do ps[#ps + 1] = i / 2 end
   for _, p in ipairs({99.5, 99.6, 99.7, 99.8, 99.9, 99.95, 99.99}) do ps[#ps + 1] = p end
   local parts = {}
   for _, p in ipairs(ps) do
      parts[#parts + 1] = string.format('[%s,%.1f]', tostring(p), latency:percentile(p))
   end
   return '[' .. table.concat(parts, ',') .. ']'
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.1f,' ..
      '"p99_us":%.1f,"mean_us":%.1f,"max_us":%.1f,"errors":{"connect":%d,"read":%d,' ..
      '"write":%d,"status":%d,"timeout":%d},"distribution_us":%s}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50),
      latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write,
      e.status, e.timeout, distribution(latency)))
end
