-- wrk script: POST /users with a new email on every request (unique per wrk thread and run).
local counter = 0
local prefix = tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  local body = string.format('{"name":"Bench User","email":"b%s-%d@example.org"}', prefix, counter)
  return wrk.format("POST", "/users", nil, body)
end

local statuses = {}
response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end
