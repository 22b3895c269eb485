-- wrk script for the ACS benchmark: each thread posts its own stripe of the pre-generated,
-- signed responses (one form body per line of BODIES), never the same one twice while they
-- last. A body used again is a replay; the bridge answers it 400 and wrk counts it as non-2xx.
local counter = 0
local threads = {}

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    local path = os.getenv("BODIES")
    local nthreads = tonumber(os.getenv("THREADS") or "2")
    bodies = {}
    local i = 0
    for line in io.lines(path) do
        if i % nthreads == id then
            table.insert(bodies, line)
        end
        i = i + 1
    end
    next_body = 1
    accepted = 0
    refused = 0
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
    local body = bodies[next_body]
    next_body = next_body + 1
    if next_body > #bodies then
        next_body = 1
    end
    return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
    if status == 200 then
        accepted = accepted + 1
    else
        refused = refused + 1
    end
end

-- Every login must be a real one: a body posted twice (the file ran out) is a replay, and
-- its quick refusal would flatter the figures, so the run says so.
function done(summary, latency, requests)
    local ok, bad = 0, 0
    for _, thread in ipairs(threads) do
        ok = ok + thread:get("accepted")
        bad = bad + thread:get("refused")
    end
    io.write(string.format("accepted logins: %d (%.0f/s), refused: %d\n", ok, ok / (summary.duration / 1e6), bad))
    if bad > 0 then
        io.write("NOT A VALID RUN: responses were refused (too few bodies for this rate?)\n")
    end
end
