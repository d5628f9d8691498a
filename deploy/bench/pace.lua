-- wrk script for fixed-rate load (used by load.sh): PACE_RATE=<total req/s> PACE_THREADS=<wrk -t>
-- wrk -s pace.lua ... (environment, not script arguments, to keep the wrk command line plain).
-- Each wrk thread hands out send slots 1000*threads/rate ms apart and delay() holds every request
-- until its slot, so the offered rate is fixed whatever the latency (as long as a connection is
-- free). Slots missed while all connections were busy are caught up later rather than skipped.
-- wrk's timers tick in whole ms, so a send may leave up to 1 ms after its slot; the mean rate holds.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } pace_timespec;
int clock_gettime(int clk, pace_timespec *ts);
]]
local ts = ffi.new("pace_timespec")
local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC; plain Lua has no sub-second clock
    return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
end

local gap, next_slot

function init(args)
    gap = 1000 * tonumber(os.getenv("PACE_THREADS")) / tonumber(os.getenv("PACE_RATE"))
end

function delay()
    local now = now_ms()
    next_slot = next_slot or now
    local slot = next_slot
    next_slot = slot + gap
    return slot > now and math.floor(slot - now) or 0
end
