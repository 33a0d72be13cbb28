-- client_credentials authenticated by private_key_jwt: each request sends the
-- next unused assertion of BENCH_ASSERTIONS (one per line, each jti fresh;
-- thread i of n sends lines i, i+n, ...). Prints one RESULT line like oauth.lua.
-- Run out of lines and the replays are refused: they show as non-2xx.
local file = os.getenv("BENCH_ASSERTIONS")
local prefix = "grant_type=client_credentials&client_assertion_type=" ..
  "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
local counter, lines, next_line = 0, {}, 1

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua").install_counters()
local count_setup = setup
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  count_setup(thread)
end

init = function()
  local n, i = 2, 0
  for line in io.lines(file) do
    if i % n == id then lines[#lines + 1] = line end
    i = i + 1
  end
end

request = function()
  local a = lines[next_line] or lines[1]
  next_line = next_line + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, prefix .. a)
end
