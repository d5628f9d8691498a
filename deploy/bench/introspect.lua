-- wrk script for the introspection benchmark: POSTs RFC 7662 requests, cycling through the
-- access tokens listed one per line in $TOKENS_FILE, as the client in $INTROSPECT_BASIC
-- (the value of an `Authorization: Basic …` header). Counts answers that are not active.
local tokens = {}
local i = 0
local inactive = 0

function init(args)
    for line in io.lines(os.getenv("TOKENS_FILE")) do
        tokens[#tokens + 1] = line
    end
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    wrk.headers["Authorization"] = "Basic " .. os.getenv("INTROSPECT_BASIC")
end

function request()
    i = i % #tokens + 1
    return wrk.format(nil, nil, nil, "token=" .. tokens[i])
end

function response(status, headers, body)
    if status ~= 200 or not body:find('"active":true', 1, true) then
        inactive = inactive + 1
    end
end

function done(summary, latency, requests)
    io.write(string.format("answers not active (must be 0): %d\n", inactive))
end
