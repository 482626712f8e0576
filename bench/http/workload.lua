-- wrk script for cachette's keyed workloads (bench/http/run.sh).
--
--   wrk ... -s workload.lua URL -- MODE [KEYS] [POST_PERCENT]
--
-- MODE is "get" (GET /cache/<key>), "post" (POST /cache with a JSON body),
-- "mix" (POST_PERCENT percent POSTs, default 10, the rest GETs), "binput"
-- (PUT /cache/bin:<key> with a 1 KiB application/octet-stream body holding
-- all 256 byte values) or "binget" (GET /cache/bin:<key>?raw, the stored
-- bytes back). Each request picks one of KEYS keys (default 10000) uniformly
-- at random.
--
-- Key i is the 16-byte string "key:%012d" and its value the 32-byte string
-- "v%031d", as bench/http/load.c writes them, so every GET hits a preloaded
-- key and every POST replaces one in place (the store's size stays constant).
--
-- Every request string is built once in init(), so request() costs one random
-- number and one table lookup: wrk's core, not the server's, is the first to
-- saturate, and the less Lua it runs per request the further it goes. No
-- response() callback is defined, for the same reason (wrk skips header
-- parsing into Lua without one); wrk still counts non-2xx answers.

local gets, posts = {}, {}
local nkeys, post_percent, mode = 10000, 10, "get"

function init(args)
  mode = args[1] or "get"
  nkeys = tonumber(args[2] or "") or 10000
  post_percent = tonumber(args[3] or "") or 10
  local modes = { get = true, post = true, mix = true, binput = true, binget = true }
  if not modes[mode] then
    error("workload.lua: MODE must be get, post, mix, binput or binget, not " .. tostring(mode))
  end
  local headers = { ["Content-Type"] = "application/json" }
  local binary_headers = { ["Content-Type"] = "application/octet-stream" }
  local bytes = {}
  for b = 0, 1023 do
    bytes[#bytes + 1] = string.char(b % 256)
  end
  local binary = table.concat(bytes)
  for i = 1, nkeys do
    local key = string.format("key:%012d", i - 1)
    if mode == "binput" then
      posts[i] = wrk.format("PUT", "/cache/bin:" .. key, binary_headers, binary)
    elseif mode == "binget" then
      gets[i] = wrk.format("GET", "/cache/bin:" .. key .. "?raw")
    elseif mode ~= "post" then
      gets[i] = wrk.format("GET", "/cache/" .. key)
    end
    if mode == "post" or mode == "mix" then
      local body = string.format('{"key":"%s","value":"v%031d"}', key, i - 1)
      posts[i] = wrk.format("POST", "/cache", headers, body)
    end
  end
  -- A different sequence per run and per thread (each has its own Lua state;
  -- its address tells them apart).
  local addr = tonumber(tostring(wrk.thread or {}):match("0x(%x+)") or "0", 16) or 0
  math.randomseed(os.time() + addr % 1000003)
end

function request()
  local i = math.random(nkeys)
  if mode == "get" or mode == "binget" then
    return gets[i]
  elseif mode == "post" or mode == "binput" then
    return posts[i]
  elseif math.random(100) <= post_percent then
    return posts[i]
  else
    return gets[i]
  end
end
