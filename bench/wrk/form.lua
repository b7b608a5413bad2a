-- POST /form: an urlencoded form of 40 fields with percent-escapes and "+"
-- (the same body as FORM_BODY in bench/run.py).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
local fields = {}
for i = 0, 39 do
    fields[#fields + 1] = string.format("field%d=caf%%C3%%A9+au+lait+%%26+cr%%C3%%A8me+%04d+", i, i)
        .. string.rep("x", 20)
end
wrk.method = "POST"
wrk.path = "/form"
wrk.body = table.concat(fields, "&")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
