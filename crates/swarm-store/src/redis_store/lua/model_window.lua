-- Shared by model_reserve.lua and model_standings.lua (prepended to each): one window's rule,
-- the same as `window_full` in src/models.rs (the conformance suite holds them to the same
-- answers). Requests are members `<at_ms>-<n>:<tokens>` scored by `at_ms`.
local MINUTE, DAY, TRIM, NEVER = 60200, 86400000, 93600000, math.huge
local function ms(n) return string.format('%d', n) end
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function tokens_of(member) return tonumber(string.match(member, ':(%d+)$')) or 0 end
-- The day's first score (exclusive): the provider's day start when given, else 24 h ago.
local function day_floor(now, day_start)
  if day_start ~= '' then return tonumber(day_start) - 1 end
  return now - DAY
end
-- `lim` = {rpm, rpd, tpm, day_start, day_end} as strings ('' = none). Returns the limit one
-- more request of `tokens` would pass and when enough of the window frees (NEVER: never), or
-- nil; and, with `usage`, the window's usage: minute requests, minute tokens, day requests, day
-- tokens. Without `usage` only what the limits need is read (an unlimited window not at all).
local function window(reqs, now, tokens, lim, usage)
  local minute, n, used = {}, 0, 0
  if usage or lim[1] ~= '' or lim[3] ~= '' then
    minute = redis.call('ZRANGEBYSCORE', reqs, '(' .. ms(now - MINUTE), '+inf', 'WITHSCORES')
    n = #minute / 2
    for i = 1, #minute, 2 do used = used + tokens_of(minute[i]) end
  end
  local floor = day_floor(now, lim[4])
  local days, dt = 0, 0
  if usage then
    local day = redis.call('ZRANGEBYSCORE', reqs, '(' .. ms(floor), '+inf')
    days = #day
    for i = 1, #day do dt = dt + tokens_of(day[i]) end
  elseif lim[2] ~= '' then
    days = redis.call('ZCOUNT', reqs, '(' .. ms(floor), '+inf')
  end
  local full, free_at = nil, nil
  local function note(limit, at)
    if free_at == nil or at > free_at then full, free_at = limit, at end
  end
  if lim[1] ~= '' then
    local limit = tonumber(lim[1])
    if n >= limit then
      if limit == 0 then note('rpm', NEVER) else note('rpm', tonumber(minute[2 * (n - limit) + 2]) + MINUTE) end
    end
  end
  if lim[2] ~= '' then
    local limit = tonumber(lim[2])
    if days >= limit then
      if limit == 0 then
        note('rpd', NEVER)
      elseif lim[5] ~= '' then
        note('rpd', tonumber(lim[5])) -- a provider's day frees all at once, at its end
      else
        local leaving = redis.call('ZRANGEBYSCORE', reqs, '(' .. ms(floor), '+inf', 'WITHSCORES',
          'LIMIT', days - limit, 1)
        note('rpd', tonumber(leaving[2]) + DAY)
      end
    end
  end
  if lim[3] ~= '' then
    local tpm = tonumber(lim[3])
    if used + tokens > tpm then
      local at, left = NEVER, used
      for i = 1, #minute, 2 do
        left = left - tokens_of(minute[i])
        if left + tokens <= tpm then
          at = tonumber(minute[i + 1]) + MINUTE
          break
        end
      end
      note('tpm', at)
    end
  end
  return full, free_at, n, used, days, dt
end
