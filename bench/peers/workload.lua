-- wrk script for the keyed workloads of the peers benchmark (bench/peers/run.sh)
-- and of the balancer's cost (bench/cluster/run.sh).
--
--   wrk ... -s workload.lua URL -- STYLE MODE DIST KEYS [VALUE_BYTES] [SET_PERCENT]
--
-- STYLE is how a server spells a read and a write:
--   json    cachette and the Gin peers: GET /cache/<key>,
--           POST /cache {"key":"<key>","value":"<value>"}
--   jsonput cachette's JSON API with PUT: GET /cache/<key>,
--           PUT /cache/<key> {"value":"<value>"} (Content-Type application/json),
--           the write every balancer can route by its path
--   raw     cachette's binary values: GET /cache/<key>?raw,
--           PUT /cache/<key> with the value as an application/octet-stream body
--   webdis  GET /GET/<key>; SET as GET /SET/<key>/<value> for the 32-byte
--           values, as PUT /SET/<key> with the value as the body for larger ones
--           (a 64 KiB value does not fit in a URL)
--   pogo    Pogocache: GET /<key>, PUT /<key> with the value as the body
-- MODE is get, set or mix (SET_PERCENT percent writes, default 10, the rest
-- reads). DIST is uniform or zipf (exponent 0.99 over the KEYS keys, key 0
-- the hottest). KEYS is how many keys (default 100000).
--
-- With VALUE_BYTES 0 (the default), key i is the 16-byte "key:%012d" and its
-- value the 32-byte "v%031d", as bench/http/load.c and run.sh's Redis preload
-- write them, so a read always hits and a write replaces in place. With
-- VALUE_BYTES > 0, key i is "val:%012d" (a separate set, so the 32-byte keys
-- keep their size) and the value VALUE_BYTES bytes of "x".
--
-- Every request string is built in init(), and a Zipf sequence of 2^18 draws
-- (binary search over the cumulative distribution) too, so request() costs a
-- table lookup or two: wrk's core, not the server's, is the first to
-- saturate, and the less Lua it runs per request the further it goes. No
-- response() callback, for the same reason; wrk still counts non-2xx answers.

local reads, writes = {}, {}
local nkeys, set_percent, mode = 100000, 10, "get"
local seq, seq_len, seq_pos = nil, 0, 0

local function zipf_sequence(n, s, count)
  local cdf, sum = {}, 0
  for i = 1, n do
    sum = sum + 1 / (i ^ s)
    cdf[i] = sum
  end
  local out = {}
  for j = 1, count do
    local u = math.random() * sum
    local lo, hi = 1, n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    out[j] = lo
  end
  return out
end

function init(args)
  local style = args[1] or "json"
  mode = args[2] or "get"
  local dist = args[3] or "uniform"
  nkeys = tonumber(args[4] or "") or 100000
  local vbytes = tonumber(args[5] or "") or 0
  set_percent = tonumber(args[6] or "") or 10
  if mode ~= "get" and mode ~= "set" and mode ~= "mix" then
    error("workload.lua: MODE must be get, set or mix, not " .. tostring(mode))
  end
  if dist ~= "uniform" and dist ~= "zipf" then
    error("workload.lua: DIST must be uniform or zipf, not " .. tostring(dist))
  end
  local big = vbytes > 0 and string.rep("x", vbytes) or nil
  local json_h = { ["Content-Type"] = "application/json" }
  local raw_h = { ["Content-Type"] = "application/octet-stream" }
  for i = 1, nkeys do
    local key = big and string.format("val:%012d", i - 1) or string.format("key:%012d", i - 1)
    local value = big or string.format("v%031d", i - 1)
    if style == "json" then
      reads[i] = wrk.format("GET", "/cache/" .. key)
      writes[i] = wrk.format("POST", "/cache", json_h,
        '{"key":"' .. key .. '","value":"' .. value .. '"}')
    elseif style == "jsonput" then
      reads[i] = wrk.format("GET", "/cache/" .. key)
      writes[i] = wrk.format("PUT", "/cache/" .. key, json_h, '{"value":"' .. value .. '"}')
    elseif style == "raw" then
      reads[i] = wrk.format("GET", "/cache/" .. key .. "?raw")
      writes[i] = wrk.format("PUT", "/cache/" .. key, raw_h, value)
    elseif style == "webdis" then
      reads[i] = wrk.format("GET", "/GET/" .. key)
      if big then
        writes[i] = wrk.format("PUT", "/SET/" .. key, raw_h, value)
      else
        writes[i] = wrk.format("GET", "/SET/" .. key .. "/" .. value)
      end
    elseif style == "pogo" then
      reads[i] = wrk.format("GET", "/" .. key)
      writes[i] = wrk.format("PUT", "/" .. key, raw_h, value)
    else
      error("workload.lua: STYLE must be json, jsonput, raw, webdis or pogo, not " .. tostring(style))
    end
    -- Only what the mode sends is kept.
    if mode == "get" then writes[i] = nil end
    if mode == "set" then reads[i] = nil end
  end
  -- A different sequence per run and per thread (each has its own Lua state;
  -- its address tells them apart).
  local addr = tonumber(tostring(wrk.thread or {}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + addr % 1000003)
  if dist == "zipf" then
    seq_len = 262144
    seq = zipf_sequence(nkeys, 0.99, seq_len)
    seq_pos = math.random(seq_len)
  end
end

local function next_key()
  if seq then
    seq_pos = seq_pos + 1
    if seq_pos > seq_len then seq_pos = 1 end
    return seq[seq_pos]
  end
  return math.random(nkeys)
end

function request()
  local i = next_key()
  if mode == "get" then
    return reads[i]
  elseif mode == "set" then
    return writes[i]
  elseif math.random(100) <= set_percent then
    return writes[i]
  else
    return reads[i]
  end
end
