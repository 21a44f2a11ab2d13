-- wrk script of bench/compare.pl: a browser-like client of N sessions.
-- compare.pl puts three lines before this text:
--   nthreads = <wrk -t>; path = "<request path>"; all = { "<cookie 1>", ... }
-- ("" for a session-less page).
--
-- Each wrk thread owns the sessions i with (i - 1) % nthreads == its id and
-- hands its idle sessions to its requests in turn, one request per session at
-- a time (so that a session's answers come back in order).  Every request
-- carries the session's last cookie and a tag "X-Bench: i:n" (session, request
-- number) that the server echoes (mod_headers "Header echo" on httpd, the JSP
-- on Tomcat, "Header always echo" on the front, so 502s are tagged too).  An
-- answer then:
--   - sets the session's cookie from its Set-Cookie (mod_session_dbd changes
--     the key on every update, mod_session_cookie carries the session, a
--     re-bound cluster session gets a new route);
--   - is "failed" unless its status is 200;
--   - has the session's counter, which must be above the counter of the
--     session's previous answer (every request adds 1): if not, an update that
--     the client saw was lost ("backwards"), and if it is 1 the session itself
--     was gone (a new, empty session answered);
--   - ends a gap: the time since the session's previous successful answer
--     ("stall": the longest one of any session, in ms).
-- done() prints the totals over every thread as "KEY value" lines; with
-- debug = true (BENCH_DEBUG=1), each thread prints its first lost updates.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)       -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)            -- main state, once per thread, before its init
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

cookie, out, lastseq, lastc, lastok, lostset, goneset = {}, {}, {}, {}, {}, {}, {}
mine, queue, head, tail, bad, statuses = {}, {}, 1, 0, {}, ""
n, reused, failed, ok, backwards, lost, gone, stall = 0, 0, 0, 0, 0, 0, 0, 0

local function push(i) tail = tail + 1; queue[tail] = i end

function init(args)
  t_start = now_ms()
  for i = 1, #all do
    if (i - 1) % nthreads == tid then
      cookie[i] = all[i]
      table.insert(mine, i)
      push(i)
    end
  end
end

request = function()
  local i
  n = n + 1
  if head <= tail then
    i = queue[head]
    queue[head] = nil
    head = head + 1
  else                  -- no idle session: answers were lost (a connection
    reused = reused + 1 -- closed under them); take the one out the longest
    for _, j in ipairs(mine) do
      if out[j] and (i == nil or out[j] < out[i]) then i = j end
    end
    i = i or mine[1]
  end
  out[i] = n
  local h = { ["X-Bench"] = i .. ":" .. n }
  if cookie[i] ~= "" then h["Cookie"] = cookie[i] end
  return wrk.format("GET", path, h)
end

response = function(status, headers, body)
  local tag, setc
  for k, v in pairs(headers) do
    local l = string.lower(k)
    if l == "x-bench" then tag = v elseif l == "set-cookie" then setc = v end
  end
  local i, r = string.match(tag or "", "^%s*(%d+):(%d+)")
  i, r = tonumber(i), tonumber(r)
  if not i or not cookie[i] or status ~= 200 then
    failed = failed + 1
    local k = (not i or not cookie[i]) and ("untagged-" .. status) or tostring(status)
    bad[k] = (bad[k] or 0) + 1
    statuses = ""
    for s, c in pairs(bad) do statuses = statuses .. s .. "=" .. c .. " " end
    if not i or not cookie[i] then return end
  else
    ok = ok + 1
    if setc and cookie[i] ~= "" then
      local c = string.match(setc, "^%s*([^;]+)")
      if c then cookie[i] = c end
    end
    local c = tonumber(string.match(body, "Counter[^%d\n]*(%d+)"))
    if c and cookie[i] ~= "" and r > (lastseq[i] or 0) then
      if lastc[i] and c <= lastc[i] then
        backwards = backwards + 1
        if debug and backwards <= 5 then
          io.write(string.format("LOST session %d request %d (previous answer: request %d) counter %d "
                                 .. "after %d, route %s, at %.0f ms, cookie %s\n", i, r, lastseq[i], c,
                                 lastc[i], string.match(body, "<h1[^>]*>([^<]*)") or "?",
                                 now_ms() - (t_start or 0), cookie[i]))
        end
        if not lostset[i] then lostset[i] = true; lost = lost + 1 end
        if c == 1 and not goneset[i] then goneset[i] = true; gone = gone + 1 end
      end
      lastseq[i], lastc[i] = r, c
    end
    local t = now_ms()
    if lastok[i] and t - lastok[i] > stall then stall = t - lastok[i] end
    lastok[i] = t
  end
  if out[i] == r then out[i] = nil; push(i) end  -- (else a late answer, see above)
end

function done(summary, latency, requests)
  local tot = { reused = 0, failed = 0, ok = 0, backwards = 0, lost = 0, gone = 0, stall = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(tot) do
      local v = t:get(k) or 0
      if k == "stall" then
        if v > tot[k] then tot[k] = v end
      else
        tot[k] = tot[k] + v
      end
    end
  end
  for _, k in ipairs({ "reused", "failed", "ok", "backwards", "lost", "gone", "stall" }) do
    io.write(string.format("BENCH_%s %.1f\n", string.upper(k), tot[k]))
  end
  local st = {}                   -- statuses other than 200, over the threads
  for _, t in ipairs(threads) do
    for s, c in string.gmatch(t:get("statuses") or "", "(%S+)=(%d+)") do
      st[s] = (st[s] or 0) + tonumber(c)
    end
  end
  local line = ""
  for s, c in pairs(st) do line = line .. " " .. s .. "=" .. c end
  io.write("BENCH_STATUSES" .. line .. "\n")
end
