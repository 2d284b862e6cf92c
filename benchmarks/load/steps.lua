-- wrk script for benchmarks/load/load_test.py: one thread = one connection = one run, so each
-- run's steps go in order. 10 % of requests resend the step just answered (a client retry).
local next_id = 0
function setup(thread)
  thread:set("run_id", "load-" .. next_id)
  next_id = next_id + 1
end

function init(args)
  step = 0
  resend = false
  math.randomseed(tonumber(string.match(run_id, "%d+")) + 1)
  bodies = {}
  for variant = 1, 16 do  -- a few (8, 4, 3) score patterns, reused
    local prompts = {}
    for p = 1, 8 do
      local rollouts = {}
      for r = 1, 4 do
        rollouts[r] = string.format("[%d,%d,%.2f]", math.random(0, 1), math.random(0, 1), math.random())
      end
      prompts[p] = "[" .. table.concat(rollouts, ",") .. "]"
    end
    bodies[variant] = "[" .. table.concat(prompts, ",") .. "]"
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = '{"step":' .. step .. ',"scores":' .. bodies[(step % 16) + 1] .. '}'
  return wrk.format(nil, "/v1/runs/" .. run_id .. "/steps", nil, body)
end

function response(status, headers, body)
  if status == 200 and not resend then
    if math.random() < 0.10 then
      resend = true  -- send the same step once more
    else
      step = step + 1
    end
  elseif status == 200 then
    resend = false
    step = step + 1
  end
end
