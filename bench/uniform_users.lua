-- wrk script: GET /users/{id} for ids drawn uniformly from 1..10000 (all cached beforehand).
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, 10000))
end
