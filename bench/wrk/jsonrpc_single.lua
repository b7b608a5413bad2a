-- POST one JSON-RPC 2.0 call (bench/jsonrpc.py, scenario "single").
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","method":"add","params":[40,2],"id":1}'
wrk.headers["Content-Type"] = "application/json"
