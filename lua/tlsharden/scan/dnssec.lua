--- DNSSEC validated by tlsharden itself: the scanner's lookups answered by
-- libunbound (Debian's lua-unbound, the library Prosody uses), which
-- checks every signature from a trust anchor down (the root's, from
-- Debian's dns-root-data, unless the caller names another) and forwards
-- its queries to the scan's resolver, so that a network without outside
-- access keeps working. Each answer gets a status:
--   secure        signed, and every signature checks out from the anchor;
--   insecure      provably unsigned (a delegation without DS);
--   bogus         the signatures do not check out (expired, altered, a
--                 key missing): someone is tampering, or the zone is
--                 broken; `why` says what libunbound found;
--   indeterminate no validation was possible: no lua-unbound, no anchor,
--                 the anchor's own keys could not be fetched, or no answer.
-- Nothing here trusts the AD bit of a resolver. Records come back parsed
-- with wire.dns_rdata, as the stub resolver's do.
local errors = require "tlsharden.errors"
local problems = require "tlsharden.problems"
local wire = require "tlsharden.wire"
local net = require "tlsharden.scan.net"

local M = {}

--- Where Debian's dns-root-data keeps the root's trust anchor.
M.ROOT_ANCHOR = "/usr/share/dns/root.key"

local TYPES = { A = 1, NS = 2, CNAME = 5, SOA = 6, MX = 15, TXT = 16, AAAA = 28, SRV = 33, DS = 43,
  DNSKEY = 48, TLSA = 52 }
local RCODES = { [0] = "NOERROR", [1] = "FORMERR", [2] = "SERVFAIL", [3] = "NXDOMAIN", [4] = "NOTIMP",
  [5] = "REFUSED" }

local lunbound, missing
do
  local ok, mod = pcall(require, "lunbound")
  if ok then lunbound = mod else missing = tostring(mod):match("^[^\n]*") end
end

--- The library that validates, as "libunbound 1.17.1 (lua-unbound 1.0.0)".
function M.library()
  if not lunbound then return nil end
  return ("libunbound %s (lua-unbound %s)"):format(tostring(lunbound._LIBVER), tostring(lunbound._VERSION))
end

--- Whether validation can run here: true, or false and why not.
function M.available()
  if lunbound then return true end
  return false, "lua-unbound is not installed (Debian: apt-get install lua-unbound): " .. tostring(missing)
end

-- "127.0.0.1:5353" or "[::1]:53" as libunbound's forwarder "127.0.0.1@5353".
local function forward_address(s)
  return ("%s@%d"):format(s.host, s.port)
end

local Validator = {}
Validator.__index = Validator

-- One libunbound context per set of forwarders and anchor, shared by every
-- scan of the process: its cache is what lets a survey reuse validated
-- answers across the endpoints and domains it scans.
local contexts = {}

--- A validator forwarding to servers (a list of { host, port, family },
-- as dns.parse_server gives) with the trust anchor file anchor (default
-- the root's). Returns it, or nil and why validation cannot run.
function M.new(servers, anchor)
  if not lunbound then return nil, select(2, M.available()) end
  anchor = anchor or M.ROOT_ANCHOR
  local f = io.open(anchor, "r")
  if not f then return nil, ("the trust anchor %s cannot be read"):format(errors.quote(anchor)) end
  f:close()
  local forward = {}
  for i, s in ipairs(servers) do forward[i] = forward_address(s) end
  local key = table.concat(forward, ",") .. "\0" .. anchor
  local v = contexts[key]
  if v then return v end
  local ok, ctx = pcall(lunbound.new, {
    async = true, resolvconf = false, hoststxt = false, forward = forward, trustfile = anchor,
    -- the forwarders may be on this machine (a local resolver, a test's
    -- authoritative server), which libunbound refuses by default
    -- (and .test, which it answers itself by default, RFC 6761, is asked
    -- of the forwarders like any other name)
    options = { ["do-not-query-localhost:"] = "no", ["local-zone:"] = "test. transparent",
      -- what goes wrong is said in the result, not on stderr
      ["logfile:"] = "/dev/null" },
  })
  if not ok then return nil, ("libunbound refused its settings: %s"):format(tostring(ctx)) end
  -- libunbound reads the anchor on its first lookup: one it answers itself
  -- (localhost, RFC 6761) says now whether it can
  local probe_ok, probe, why = pcall(ctx.resolve, ctx, "localhost.", 1, 1)
  if not probe_ok or not probe then
    return nil, ("libunbound cannot start with the trust anchor %s: %s"):format(errors.quote(anchor),
      tostring(probe_ok and why or probe))
  end
  v = setmetatable({ ctx = ctx, anchor = anchor, forward = forward,
    server = "libunbound via " .. table.concat(forward, ", ") }, Validator)
  contexts[key] = v
  return v
end

--- Forget every validator made so far, and with them the answers they
-- hold (the next lookup starts from the trust anchor again).
function M.forget()
  contexts = {}
end

--- The status of a libunbound result: status, why.
function M.status_of(res)
  if res.secure then return "secure" end
  if res.bogus then
    local why = tostring(res.bogus)
    -- the anchor's own keys out of reach: nothing could be checked
    if why:find("no DNSKEY rrset for trust anchor", 1, true) or why:find("could not fetch DNSKEY", 1, true)
        and why:find("trust anchor", 1, true) then
      return "indeterminate", why
    end
    return "bogus", why
  end
  -- unsigned, provably: an answer or a denial (NOERROR, NXDOMAIN); any
  -- other answer says nothing of its signatures
  if res.rcode ~= 0 and res.rcode ~= 3 then
    return "indeterminate", ("no answer (%s)"):format(RCODES[res.rcode] or ("RCODE" .. tostring(res.rcode)))
  end
  return "insecure"
end

-- A result in the stub resolver's shape from a libunbound result.
local function result_of(name, qtype, res)
  local out = { name = name, type = qtype, records = {}, cnames = {}, rcode = RCODES[res.rcode] or
    ("RCODE" .. tostring(res.rcode)), transport = "libunbound" }
  local status, why = M.status_of(res)
  out.dnssec = { status = status, why = why }
  out.authenticated = status == "secure"
  if res.canonname and res.canonname:gsub("%.$", ""):lower() ~= name:gsub("%.$", ""):lower() then
    out.cnames[1] = res.canonname:gsub("%.$", "")
  end
  if status == "bogus" then
    -- the records come along (libunbound returns them): what they name is
    -- still scanned, the answer is an error of its own
    out.failure = problems.new("error", "DNSSEC_BOGUS",
      ("the DNSSEC signatures of %s %s do not check out: %s"):format(name, qtype, why))
  elseif res.rcode ~= 0 then
    out.failure = problems.new("error", problems.code(out.rcode),
      ("%s %s: the validating resolver answered %s%s"):format(name, qtype, out.rcode,
        why and (" (" .. why .. ")") or ""))
    return out
  end
  for i = 1, res.n or #res do
    local rr, err = wire.dns_rdata(qtype, res[i])
    if rr then
      rr.name = out.cnames[1] or name
      out.records[#out.records + 1] = rr
    elseif not out.failure then
      out.failure = problems.new("error", "MALFORMED", ("%s %s: %s"):format(name, qtype, err))
    end
  end
  return out
end

--- Look name up for qtype (a name of TYPES), validated. With sched (a
-- scan scheduler, inside one of its tasks) the wait parks the task;
-- without, it blocks. timeout bounds the wait (seconds); budget, when
-- given, is the whole lookup's bound that timeout is what is left of (the
-- message then says that it ran out). Returns a result
-- as Resolver:query gives (records, cnames, rcode, failure,
-- authenticated) plus dnssec = { status, why }.
function Validator:query(name, qtype, sched, timeout, budget)
  local code = TYPES[qtype]
  if not code then errors.argument("scan.dnssec.query", 2, "qtype", "unknown type %s", errors.quote(qtype)) end
  local qname = name:sub(-1) == "." and name or name .. "."
  if not sched then
    local res, err = self.ctx:resolve(qname, code, 1)
    if not res then
      local out = { name = name, type = qtype, records = {}, cnames = {}, authenticated = false,
        dnssec = { status = "indeterminate", why = tostring(err) } }
      out.failure = problems.new("error", "NETWORK", ("%s %s: %s"):format(name, qtype, tostring(err)))
      return out
    end
    return result_of(name, qtype, res)
  end
  local done
  local q, err = self.ctx:resolve_async(function(res) done = res or false end, qname, code, 1)
  if not q then
    return { name = name, type = qtype, records = {}, cnames = {}, authenticated = false,
      dnssec = { status = "indeterminate", why = tostring(err) },
      failure = problems.new("error", "NETWORK", ("%s %s: %s"):format(name, qtype, tostring(err))) }
  end
  local fd = self.ctx:getfd()
  local handle = { getfd = function() return fd end, dirty = function() return false end }
  local deadline = net.now() + (timeout or 5)
  while done == nil do
    self.ctx:process()
    if done ~= nil then break end
    local left = deadline - net.now()
    -- another task's process() may have run this query's callback and
    -- taken the wake-up with it: wait in short slices
    if left <= 0 then
      pcall(self.ctx.cancel, self.ctx, q)
      return { name = name, type = qtype, records = {}, cnames = {}, authenticated = false,
        dnssec = { status = "indeterminate", why = "no answer in time" },
        failure = problems.new("error", "TIMEOUT", budget
          and ("no validated answer for %s %s: the lookup's %gs ran out"):format(name, qtype, budget)
          or ("no validated answer for %s %s in %gs"):format(name, qtype, timeout or 5)) }
    end
    sched:wait(handle, "read", math.min(left, 0.02))
  end
  if not done then
    return { name = name, type = qtype, records = {}, cnames = {}, authenticated = false,
      dnssec = { status = "indeterminate", why = "the lookup failed" },
      failure = problems.new("error", "NETWORK", ("%s %s: the lookup failed"):format(name, qtype)) }
  end
  return result_of(name, qtype, done)
end

return M
