-- wrk script for scenario 8, the mixed load: of every 10 requests, 9 read one of the warm ids
-- 1..WARM (cached before the run) at random and the 10th reads a cold id, each cold id once.
-- Arguments (after --): FIRST, the first cold id (the harness gives each run its own range),
-- and WARM (default 1000). Use with -t1: each thread would count from FIRST.
-- At the end it prints "cold ids: N", how many cold ids it asked for.
local n = 0
local warm = 1000
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  first = tonumber(args[1]) or 1001
  cold = first
  warm = tonumber(args[2]) or 1000
  math.randomseed(first)
end

request = function()
  n = n + 1
  if n % 10 == 0 then
    cold = cold + 1
    return wrk.format("GET", "/users/" .. (cold - 1))
  end
  return wrk.format("GET", "/users/" .. math.random(1, warm))
end

done = function(summary, latency, requests)
  for _, t in ipairs(threads) do
    io.write(string.format("cold ids: %d\n", t:get("cold") - t:get("first")))
  end
end
