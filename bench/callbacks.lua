-- wrk script for bench/ingest: POSTs pre-signed status callbacks read from a data file.
--
-- Arguments after "--": data file, first line (1-based), number of lines, target rate per second
-- (0 = as fast as the server answers). The data file has one "signature<TAB>form body" line per
-- callback, each with a unique CallSid; a run cycles through its lines and counts every
-- wrap-around (a repeat). done() prints one "JSON {...}" line that bench/ingest parses.
--
-- Pacing: delay() hands each connection, when it is free, the next slot of one schedule of
-- random (exponential, i.e. Poisson) arrivals at the target rate, so the rate does not depend on
-- the server's latency; a server that falls behind gets the backlog as fast as it answers.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local timespec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local path, first, count = args[1], tonumber(args[2]), tonumber(args[3])
  local rate = tonumber(args[4])
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  pool, index, calls, non200, wraps = {}, 0, 0, 0, 0
  local line_no = 0
  for line in io.lines(path) do
    line_no = line_no + 1
    if line_no >= first + count then break end
    if line_no >= first then
      local sig, body = line:match("^([^\t]*)\t(.*)$")
      headers["X-SignalWire-Signature"] = sig
      pool[#pool + 1] = wrk.format("POST", nil, headers, body)
    end
  end
  if #pool == 0 then error("no requests in " .. path) end
  if rate > 0 then
    math.randomseed(os.time())
    local mean_gap_ms, slot = 1000 / rate, nil
    delay = function()
      local now = now_ms()
      slot = (slot or now) - mean_gap_ms * math.log(1 - math.random())
      return math.max(0, slot - now)
    end
  end
end

function request()
  calls = calls + 1
  index = index + 1
  if index > #pool then
    index, wraps = 1, wraps + 1
  end
  return pool[index]
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, rates)
  local calls_, non200_, wraps_ = 0, 0, 0
  for _, thread in ipairs(threads) do
    calls_ = calls_ + thread:get("calls")
    non200_ = non200_ + thread:get("non200")
    wraps_ = wraps_ + thread:get("wraps")
  end
  -- wrk calls request() once per thread before the run to check it; that one is never sent.
  local sent = calls_ - #threads
  local e = summary.errors
  io.write(string.format(
    'JSON {"responses": %d, "duration_us": %d, "sent": %d, "non200": %d, "wraps": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, sent, non200_, wraps_,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
