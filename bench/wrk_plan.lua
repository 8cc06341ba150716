-- wrk's request plan: every request of a measurement, read from a plan file, sent in turn.
--
--   BENCH_PLAN=plan.tsv BENCH_PLAN_MODE=cycle|once BENCH_PLAN_START=0 \
--     wrk -t1 -c16 -d20s --timeout 30s -s bench/wrk_plan.lua http://127.0.0.1:PORT
--
-- The plan file has one request a line, fields separated by tabs (bench/wrk.py writes it;
-- no field holds a tab or a newline): METHOD, PATH (query included), BODY (may be empty),
-- then any number of "Name: value" headers. Every request is built once, in init(), so
-- request() only hands out a prepared string (building one per call would make wrk, not
-- the server, the bottleneck).
--
-- `cycle` repeats the plan (reads). `once` sends each request at most once (writes that
-- are valid only once): when the plan runs out, delay() holds every connection back for
-- longer than any run, so nothing more is sent, and `exhausted` says so (the harness
-- then reports the run as cut short: its plan was too small). Should request() still be
-- asked for one, it goes to /readyz and is counted apart as `after_plan`. Only in `once`
-- mode are response() and delay() defined: wrk parses every response for Lua when
-- response() is, which costs throughput the reads cannot spare. Reads still have wrk's
-- own count of statuses >= 400 (summary.errors.status).
--
-- wrk calls request() once before the run to look at the request (it counts pipelined
-- requests in the string): that plan line is skipped, never sent twice.
--
-- done() prints one line, "BENCH-RESULT {json}", with the figures the harness reads.

local plan_path = os.getenv("BENCH_PLAN")
local mode = os.getenv("BENCH_PLAN_MODE") or "cycle"
local start = tonumber(os.getenv("BENCH_PLAN_START") or "0")

local prepared = {}
local count = 0
local index = 0
sent = 0 -- requests handed to wrk (read back in done() through thread:get)
after_plan = 0 -- `once` plans only: requests asked for after the plan ran out
exhausted = false
statuses = {} -- `once` plans only: status -> responses

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

function init(args)
  for line in io.lines(plan_path) do
    if line ~= "" then
      local fields = split(line)
      local headers = {}
      for i = 4, #fields do
        local name, value = fields[i]:match("^([^:]+):%s*(.*)$")
        if name then
          headers[name] = value
        end
      end
      local body = fields[3]
      if body == "" then
        body = nil
      end
      count = count + 1
      prepared[count] = wrk.format(fields[1], fields[2], headers, body)
    end
  end
  if count == 0 then
    error("the plan " .. tostring(plan_path) .. " holds no request")
  end
  index = start
  if mode == "once" then
    response = function(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
    end
    delay = function()
      if index >= count then
        exhausted = true
        return HOLD_MS
      end
      return 0
    end
  else
    response = nil
    delay = nil
    index = start % count
  end
end

local readyz = nil
HOLD_MS = 3600 * 1000 -- longer than any run

function request()
  if index >= count then
    if mode ~= "once" then
      index = 0
    else
      exhausted = true
      readyz = readyz or wrk.format("GET", "/readyz")
      after_plan = after_plan + 1
      return readyz
    end
  end
  index = index + 1
  sent = sent + 1
  return prepared[index]
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local function json_statuses(all)
  local parts = {}
  for status, n in pairs(all) do
    parts[#parts + 1] = string.format('"%d": %d', status, n)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local total_sent, total_after, any_exhausted = 0, 0, false
  local all = {}
  for _, thread in ipairs(threads) do
    total_sent = total_sent + (thread:get("sent") or 0)
    total_after = total_after + (thread:get("after_plan") or 0)
    any_exhausted = any_exhausted or thread:get("exhausted")
    for status, n in pairs(thread:get("statuses") or {}) do
      all[status] = (all[status] or 0) + n
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}, "sent": %d, "after_plan": %d, "exhausted": %s, '
      .. '"statuses": %s}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_sent, total_after, tostring(any_exhausted), json_statuses(all)
  ))
end
