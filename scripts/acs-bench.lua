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
