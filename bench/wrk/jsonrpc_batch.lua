-- POST a batch of 10 JSON-RPC 2.0 calls (bench/jsonrpc.py, scenario "batch"):
-- positional and named params, string and number ids.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
local calls = {}
for i = 1, 10 do
    if i % 2 == 0 then
        calls[i] = string.format('{"jsonrpc":"2.0","method":"add","params":{"a":%d,"b":2},"id":"c%d"}', i, i)
    else
        calls[i] = string.format('{"jsonrpc":"2.0","method":"add","params":[%d,2],"id":%d}', i, i)
    end
end
wrk.method = "POST"
wrk.body = "[" .. table.concat(calls, ",") .. "]"
wrk.headers["Content-Type"] = "application/json"
