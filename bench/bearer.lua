-- wrk script: every request carries Authorization: Bearer <token>, the token given after
-- wrk's "--" (bench/auth.py passes it).
local req

init = function(args)
  req = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. args[1] })
end

request = function()
  return req
end
