-- cachette.lua: the key of a POST /cache body, for HAProxy to hash.
--
-- The seed's POST /cache carries its key in a JSON body. HAProxy's own
-- json_query decodes "\u00e9" into the byte 0xE9 (not UTF-8) and gives up on
-- "\/" or an escape above \u00ff, so it would hash such a key apart from the
-- same key in a path. This converter reads the body's top-level "key" member
-- and decodes it as the nodes' JSON parser does, escapes included, so the
-- bytes hashed are the bytes stored: the same node as /cache/<key>.
--
-- It reads what HAProxy buffered (option http-buffer-request: one buffer of
-- tune.bufsize, 16 KiB, shared with the headers): the key must come early, as
-- it does when a client writes {"key": ..., "value": ...} in that order. It returns ""
-- when the body is not a JSON object, has no string "key" in what was
-- buffered, or is malformed before it (a Lua nil would reach HAProxy as the
-- integer 0, a key like any other): haproxy.cfg then answers 400 itself
-- rather than hash every such body to one node.
--
-- Install: copy next to haproxy.cfg and name it in "lua-load".

local SIMPLE_ESCAPES = {
    ['"'] = '"', ['\\'] = '\\', ['/'] = '/',
    b = '\b', f = '\f', n = '\n', r = '\r', t = '\t',
}

local function skip_space(s, i)
    return s:find("[^ \t\r\n]", i)
end

-- The four hex digits at i as a number, or nil.
local function hex4(s, i)
    local digits = s:sub(i, i + 3)
    if not digits:find("^%x%x%x%x$") then
        return nil
    end
    return tonumber(digits, 16)
end

-- The string whose opening quote is at i, decoded, and the index after its
-- closing quote; nil if it is malformed or runs past the end of s.
local function read_string(s, i)
    local parts, n = {}, 0
    i = i + 1
    while true do
        local at = s:find('["\\]', i)
        if not at then
            return nil
        end
        n = n + 1
        parts[n] = s:sub(i, at - 1)
        if s:byte(at) == 34 then -- '"'
            return table.concat(parts), at + 1
        end
        local escape = s:sub(at + 1, at + 1)
        local simple = SIMPLE_ESCAPES[escape]
        if simple then
            n = n + 1
            parts[n] = simple
            i = at + 2
        elseif escape == "u" then
            local code = hex4(s, at + 2)
            if not code then
                return nil
            end
            i = at + 6
            if code >= 0xD800 and code <= 0xDBFF and s:sub(i, i + 1) == "\\u" then
                local low = hex4(s, i + 2)
                if low and low >= 0xDC00 and low <= 0xDFFF then
                    code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
                    i = i + 6
                end
            end
            if code >= 0xD800 and code <= 0xDFFF then
                return nil -- a lone surrogate: the node refuses it whichever node it is
            end
            n = n + 1
            parts[n] = utf8.char(code)
        else
            return nil
        end
    end
end

-- The index just after the JSON value that starts at i, or nil. Strings are
-- skipped without decoding; objects and arrays by counting brackets.
local function skip_value(s, i)
    local c = s:sub(i, i)
    if c == '"' then
        local _, after = read_string(s, i)
        return after
    end
    if c ~= "{" and c ~= "[" then
        local _, last = s:find("^[%w%.%+%-]+", i)
        return last and last + 1
    end
    local depth = 0
    while true do
        local at = s:find('[][{}"]', i)
        if not at then
            return nil
        end
        local b = s:sub(at, at)
        if b == '"' then
            local _, after = read_string(s, at)
            if not after then
                return nil
            end
            i = after
        else
            depth = depth + ((b == "{" or b == "[") and 1 or -1)
            i = at + 1
            if depth == 0 then
                return i
            end
        end
    end
end

-- The decoded string value of the object's top-level "key" member, or nil.
local function body_key(body)
    local i = skip_space(body, 1)
    if not i or body:sub(i, i) ~= "{" then
        return nil
    end
    i = i + 1
    while true do
        i = skip_space(body, i)
        if not i or body:sub(i, i) ~= '"' then
            return nil
        end
        local name, after = read_string(body, i)
        if not name then
            return nil
        end
        i = skip_space(body, after)
        if not i or body:sub(i, i) ~= ":" then
            return nil
        end
        i = skip_space(body, i + 1)
        if not i then
            return nil
        end
        if name == "key" then
            if body:sub(i, i) ~= '"' then
                return nil
            end
            return (read_string(body, i))
        end
        i = skip_value(body, i)
        i = i and skip_space(body, i)
        if not i or body:sub(i, i) ~= "," then
            return nil
        end
        i = i + 1
    end
end

core.register_converters("cachette_body_key", function(body)
    return body_key(body) or ""
end)
