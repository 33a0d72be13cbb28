-- POST one form to the URL and print one RESULT line (rps, p50, p99, non-2xx).
-- Env: BENCH_BODY (the urlencoded form); BENCH_AUTH=basic (default: HTTP Basic
-- with BENCH_CLIENT_ID and BENCH_SECRET), post (both in the form) or none.
local function b64(s)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

local auth = os.getenv("BENCH_AUTH") or "basic"
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if auth == "basic" then
  wrk.headers["Authorization"] = "Basic " .. b64(os.getenv("BENCH_CLIENT_ID") .. ":" .. os.getenv("BENCH_SECRET"))
elseif auth == "post" then
  wrk.body = wrk.body .. "&client_id=" .. os.getenv("BENCH_CLIENT_ID") .. "&client_secret=" .. os.getenv("BENCH_SECRET")
end

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua").install_counters()
