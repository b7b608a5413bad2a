-- GET of the URL's path, keep-alive; prints the JSON summary of report.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
