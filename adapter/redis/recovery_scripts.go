package redis

import (
	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts of connection state recovery (recovery.go): each runs
// atomically in Redis, on the keys of one namespace (one hash tag).

// ---------------------------------------------------------------- scripts

// logScript logs a broadcast and publishes it with its offset. A sender's
// scripts run in the order of their nonces (one publisher per node, one
// pipeline at a time), and go-redis may send a pipeline again after a
// network error: a nonce already logged is not logged twice. KEYS: log,
// log bytes, senders. ARGV: channel, message without its offset,
// MaxPackets, MaxPacketBytes, window (ms), key expiry (ms), sender uid,
// nonce.
var logScript = goredis.NewScript(`
local last = redis.call('HGET', KEYS[3], ARGV[7])
if last then
  local sp = string.find(last, ' ')
  if tonumber(string.sub(last, 1, sp - 1)) >= tonumber(ARGV[8]) then return string.sub(last, sp + 1) end
end
local id = redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[7], ARGV[8] .. ' ' .. id)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
local total = redis.call('INCRBY', KEYS[2], #ARGV[2])
local len = redis.call('XLEN', KEYS[1])
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[5])
while len > 1 do
  local e = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  local ms = tonumber(string.match(e[1], '^(%d+)'))
  if len <= tonumber(ARGV[3]) and total <= tonumber(ARGV[4]) and ms >= oldest then break end
  redis.call('XDEL', KEYS[1], e[1])
  total = redis.call('DECRBY', KEYS[2], #e[2][2])
  len = len - 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
local hdr
if #id < 32 then hdr = string.char(0xa0 + #id) else hdr = string.char(0xd9, #id) end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. hdr .. id)
return id
`)

// restoreScript takes a session that nobody changed since it was read and
// returns the log after the client's offset, which must still be in it
// (nil when the session or the offset is gone, 0 when the session changed).
// The session is a live one again: out of the index of those that left.
// KEYS: session, log, index, sizes, total. ARGV: owner and version read,
// new owner, offset, live expiry (ms), MaxPackets, pid.
var restoreScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'o', 'v')
if not cur[1] then return false end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
if #redis.call('XRANGE', KEYS[2], ARGV[4], ARGV[4]) == 0 then return false end
local es = redis.call('XRANGE', KEYS[2], '(' .. ARGV[4], '+', 'COUNT', tonumber(ARGV[6]) + 1)
if #es > tonumber(ARGV[6]) then return false end
redis.call('HSET', KEYS[1], 'o', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local n = tonumber(redis.call('HGET', KEYS[4], ARGV[7]) or '0')
if n > 0 then
  redis.call('HDEL', KEYS[4], ARGV[7])
  redis.call('ZREM', KEYS[3], ARGV[7])
  redis.call('DECRBY', KEYS[5], n)
end
return {1, es}
`)

// saveScript stores a session snapshot unless another adapter owns the
// session (0) or a newer snapshot is stored. The sessions of sockets that
// left (ARGV live "0") are indexed by expiry and kept within MaxSessions and
// MaxSessionBytes, the soonest to expire going first (2 when that was this
// one): a client that connects and leaves in a loop cannot grow them. Live
// sessions are bounded by the connections of the nodes, and not counted.
// KEYS: session, index, sizes, total. ARGV: owner, version, state, expiry
// (ms), pid, MaxSessions, MaxSessionBytes, session key prefix, key expiry
// (ms), live.
const saveScriptSrc = `
local cur = redis.call('HMGET', KEYS[1], 'o', 'v')
if cur[1] and cur[1] ~= ARGV[1] then return 0 end
if cur[2] and tonumber(cur[2]) > tonumber(ARGV[2]) then return 1 end
redis.call('HSET', KEYS[1], 'o', ARGV[1], 'v', ARGV[2], 's', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, p in ipairs(gone) do
  total = total - tonumber(redis.call('HGET', KEYS[3], p) or '0')
  redis.call('HDEL', KEYS[3], p)
end
if #gone > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')
local kept = 1
if ARGV[10] == '1' then
  if old > 0 then
    redis.call('HDEL', KEYS[3], ARGV[5])
    redis.call('ZREM', KEYS[2], ARGV[5])
    total = total - old
  end
else
  local size = #ARGV[3] + #ARGV[5] + 64
  total = total + size - old
  redis.call('HSET', KEYS[3], ARGV[5], size)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
  while true do
    local n = redis.call('ZCARD', KEYS[2])
    if n == 0 then total = 0 break end
    if n <= tonumber(ARGV[6]) and total <= tonumber(ARGV[7]) then break end
    local p = redis.call('ZPOPMIN', KEYS[2])[1]
    total = total - tonumber(redis.call('HGET', KEYS[3], p) or '0')
    redis.call('HDEL', KEYS[3], p)
    redis.call('DEL', ARGV[8] .. p)
    if p == ARGV[5] then kept = 2 end
  end
end
if total < 0 then total = 0 end
redis.call('SET', KEYS[4], total, 'PX', ARGV[9])
redis.call('PEXPIRE', KEYS[2], ARGV[9])
redis.call('PEXPIRE', KEYS[3], ARGV[9])
return kept
`

var saveScript = goredis.NewScript(saveScriptSrc)

// discardScript deletes a session this adapter owns. KEYS: session,
// index, sizes, total. ARGV: owner, pid.
const discardScriptSrc = `
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
local n = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
redis.call('HDEL', KEYS[3], ARGV[2])
if n > 0 then redis.call('DECRBY', KEYS[4], n) end
return 1
`

// refreshScript renews the expiry of live sessions, and of the keys they
// rely on. KEYS: index, log, log bytes, sizes, total. ARGV: live expiry
// (ms), key expiry (ms), session key prefix, pids…
const refreshScriptSrc = `
for i = 4, #ARGV do
  redis.call('PEXPIRE', ARGV[3] .. ARGV[i], ARGV[1])
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`

// refreshBatch is the most sessions renewed by one script.
const refreshBatch = 256
