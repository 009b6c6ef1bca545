-- wrk script: POST /v1/verifications, each request for a phone number of its own.
--   wrk -t1 -c16 -d3s -s bench/creates.lua <api>/v1/verifications -- <token> <first n>
-- The numbers are 0901 and seven digits from <first n> + 1 on. At the end it prints
-- "created <c> other <o>": c answers were 201, o were anything else.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  token = args[1]
  n = tonumber(args[2])
  created, other = 0, 0
end

function request()
  n = n + 1
  local body = string.format('{"phone_number": "0901%07d"}', n)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  io.write(string.format("created %d other %d\n", c, o))
end
