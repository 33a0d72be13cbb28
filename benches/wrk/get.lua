-- GET the URL; print one RESULT line (rps, p50, p99, non-2xx) at the end.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua").install_counters()
