-- wrk script of scripts/load: the mixed load of one level.
--
-- Each request is, with equal odds, one of five: four reads (a member's compliance, a member's
-- ledger, an organisation's roll-up, a page of an organisation's member list) and one command
-- (a study session), so 80 % reads and 20 % commands.
--
-- A session must not overlap another session of its member (a 409 otherwise), so each wrk
-- thread records sessions only for members of its own (index ≡ thread mod threads), one
-- member after the other, and its n-th session goes to slot `slot_base + n ÷ its members` of
-- that member. Slots are SESSION_MINUTES long and lie in the nights (00:00–07:00, ledger time)
-- of the days before today, going back one night per SLOTS_PER_NIGHT slots: the demo data
-- has no session there (its sessions start between 08:00 and 20:00 and last under two hours),
-- every demo member was enrolled more than 30 days before today, and nights are in the past
-- whatever today is. scripts/load hands each level the first slot the previous level left
-- unused (`done` prints `load: next_slot`), so levels never collide either. Session ids are
-- made of the run's tag, the level, the thread and the count: never sent twice.
--
-- Arguments (after `--`): members_file orgs_file quarters read_token write_token
-- night0_epoch slot_base run_tag level threads (`level`: a number naming the level, for the
-- session ids). `quarters` is a comma-separated list; roll-ups and lists ask for one of them
-- at random.
--
-- With LOAD_ERROR_BODIES=1 in the environment, every answer that is not 2xx is printed to
-- stderr with its status and body (wrk then reads every body, which costs it some speed).

local SESSION_MINUTES = 10
local SLOTS_PER_NIGHT = 7 * 60 / SESSION_MINUTES
local COURSE = "load-test-course"

local threads = {}

-- Runs in wrk's main Lua state, once per thread, before the thread's `init`.
function setup(thread)
  thread:set("thread_id", #threads)
  threads[#threads + 1] = thread
end

local function lines(path)
  local found = {}
  for line in io.lines(path) do
    if line ~= "" then found[#found + 1] = line end
  end
  assert(#found > 0, path .. " is empty")
  return found
end

local members, orgs, quarters, mine
local read_token, write_token, night0, run_tag, level
-- Globals, so that `done` can read them from each thread: the first slot, the thread's
-- members and how many sessions it sent.
slot_base, mine_count, sessions = 0, 0, 0

function init(args)
  members = lines(args[1])
  orgs = lines(args[2])
  quarters = {}
  for q in string.gmatch(args[3], "[^,]+") do quarters[#quarters + 1] = q end
  read_token, write_token = args[4], args[5]
  night0, slot_base = tonumber(args[6]), tonumber(args[7])
  run_tag, level = tonumber(args[8]), tonumber(args[9])
  local thread_total = tonumber(args[10])
  mine = {}
  for i = thread_id + 1, #members, thread_total do mine[#mine + 1] = members[i] end
  assert(#mine > 0, "fewer members than wrk threads")
  mine_count = #mine
  math.randomseed(run_tag + 7919 * level + 104729 * thread_id)
end

local function pick(list)
  return list[math.random(#list)]
end

local function read(path)
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. read_token })
end

local function instant(epoch)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch)
end

local function study_session()
  local member = mine[sessions % #mine + 1]
  local slot = slot_base + math.floor(sessions / #mine)
  local night = math.floor(slot / SLOTS_PER_NIGHT) + 1
  local started = night0 - night * 86400 + (slot % SLOTS_PER_NIGHT) * SESSION_MINUTES * 60
  local session_id = string.format("%08x-%04x-4%03x-8000-%012x", run_tag, level, thread_id,
    sessions)
  sessions = sessions + 1
  local body = string.format(
    '{"session_id":"%s","course_id":"%s","started_at":"%s","ended_at":"%s"}',
    session_id, COURSE, instant(started), instant(started + SESSION_MINUTES * 60))
  return wrk.format("POST", "/v1/members/" .. member .. "/study-sessions", {
    ["Authorization"] = "Bearer " .. write_token,
    ["Content-Type"] = "application/json",
  }, body)
end

function request()
  local kind = math.random(5)
  if kind == 1 then
    return read("/v1/members/" .. pick(members) .. "/compliance")
  elseif kind == 2 then
    return read("/v1/members/" .. pick(members) .. "/ledger")
  elseif kind == 3 then
    return read("/v1/orgs/" .. pick(orgs) .. "/compliance?quarter=" .. pick(quarters))
  elseif kind == 4 then
    -- Half first pages, half pages that start after a random member.
    local cursor = ""
    if math.random(2) == 1 then cursor = "&cursor=" .. pick(members) end
    return read("/v1/orgs/" .. pick(orgs) .. "/members?limit=50&quarter=" .. pick(quarters) ..
      cursor)
  end
  return study_session()
end

if os.getenv("LOAD_ERROR_BODIES") == "1" then
  function response(status, headers, body)
    if status < 200 or status > 299 then
      io.stderr:write(string.format("load: answer %d: %s\n", status, body))
    end
  end
end

-- Runs in the main Lua state after the run: wrk's own figures, in lines scripts/load reads.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("load: requests %d\n", summary.requests))
  io.write(string.format("load: seconds %.3f\n", summary.duration / 1e6))
  io.write(string.format("load: socket_errors %d\n", e.connect + e.read + e.write + e.timeout))
  io.write(string.format("load: non_2xx_3xx %d\n", e.status))
  io.write(string.format("load: p50_ms %.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("load: p99_ms %.3f\n", latency:percentile(99) / 1000))
  local next_slot, sent = 0, 0
  for _, thread in ipairs(threads) do
    local count, base = thread:get("sessions"), thread:get("slot_base")
    sent = sent + count
    next_slot = math.max(next_slot, base + math.ceil(count / thread:get("mine_count")))
  end
  io.write(string.format("load: sessions %d\n", sent))
  io.write(string.format("load: next_slot %d\n", next_slot))
end
