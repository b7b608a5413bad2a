-- GET with "Connection: close": the server closes after each response and
-- wrk opens a new connection for the next request.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
wrk.headers["Connection"] = "close"
