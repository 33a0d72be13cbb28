-- Shared by oauth.lua and get.lua (loaded with dofile): count every non-2xx
-- answer and print one RESULT line (rps, p50, p99, non-2xx) at the end.
local M = {}

function M.install_counters()
  local threads = {}
  setup = function(thread)
    thread:set("non2xx", 0)
    table.insert(threads, thread)
  end
  response = function(status)
    if status < 200 or status > 299 then non2xx = non2xx + 1 end
  end
  done = function(summary, latency)
    local bad = 0
    for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
    io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f non2xx=%d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad))
  end
end

return M
