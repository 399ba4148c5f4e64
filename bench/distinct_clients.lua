-- wrk script: GET /users/1 from 1,000 distinct clients, named in X-Forwarded-For (the server
-- trusts 127.0.0.1 as a proxy), so the rate limiter keeps a bucket for each. wrk has no
-- per-connection state, so each thread cycles through the 1,000 addresses.
local n = 0
local requests = {}

init = function(args)
  for i = 0, 999 do
    requests[i] = wrk.format("GET", "/users/1", { ["X-Forwarded-For"] = string.format("10.7.%d.%d", i // 256, i % 256) })
  end
end

request = function()
  n = (n + 1) % 1000
  return requests[n]
end
