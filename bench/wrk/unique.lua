-- wrk script for bench/limits.py: POST a chat completion whose question differs on every
-- request (so a response cache misses every time and stores every answer).
--   wrk ... -s bench/wrk/unique.lua URL -- API_KEY
-- Prints one BENCH_RESULT line at the end, like bench/wrk/chat.lua.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. (args[1] or "sk-bench")
end

function request()
   counter = counter + 1
   local body = string.format(
      '{"model":"bench","messages":[{"role":"user","content":"Question %d-%d-%d"}]}',
      tid, counter, math.random(1, 1000000000))
   return wrk.format(nil, nil, nil, body)
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
