--- A DNSSEC-signed zone on a free port of 127.0.0.1 for the DNSSEC specs:
-- keys made per run with ldns-keygen, zones signed with ldns-signzone
-- (NSEC, explicit inception and expiration), served by Debian's nsd with a
-- configuration, pid file and zone directory of its own under a temporary
-- directory, and a trust anchor of the test's own (never the root's).
--
-- M.start(opts) serves one parent zone, the anchor's (xmpp.test.), and
-- under it four XMPP domains, each with the same records: the domain's A,
-- _xmpp-client._tcp and _xmpp-server._tcp SRV to host.DOMAIN, host.DOMAIN's
-- A and the TLSA records of the caller at _PORT._tcp.host.DOMAIN:
--   secure.xmpp.test.    in the signed parent                 -> secure
--   insecure.xmpp.test.  an unsigned child zone, NS and glue
--                        in the parent, no DS                 -> insecure
--   tampered.xmpp.test.  in the signed parent, one byte of each
--                        RRSIG's signature changed after
--                        signing                              -> bogus
--   expired.xmpp.test.   a child zone signed with its own keys,
--                        DS in the parent, every signature
--                        expired two days ago                 -> bogus
-- The same nsd serves the parent and both children (it answers a DS query
-- from the parent's side).
--
-- M.validate_with(tool, handle, name, type) asks one validator about one
-- name: "unbound-host", "delv" or "lunbound" (lua-unbound, in a child Lua
-- process so that libunbound stays out of the sanitizer and valgrind
-- suites' process), and returns the verdict ("secure" | "insecure" |
-- "bogus" | "indeterminate"), the raw output and, for lunbound, the
-- result's fields.
--
-- What lua-unbound 1.0.0 (libunbound 1.17.1, Debian 12) does against this
-- zone (spec/dnssec_zone_spec.lua checks it; M.lunbound_config encodes it):
-- * require("lunbound").new{ forward = "127.0.0.1@PORT", trustfile = FILE,
--   resolvconf = false, hoststxt = false, options = {...} }.
--   forward: a string or a list of them (ub_ctx_set_fwd); trustfile: one
--   file of DS or DNSKEY zone-file lines (ub_ctx_add_ta_file); trusted: one
--   such line as a string (ub_ctx_add_ta); a list of lines makes new()
--   return that list instead of a context. options: name -> value pairs
--   handed to ub_ctx_set_option as they are, so a name carries
--   unbound.conf's colon: { ["local-zone:"] = "test. transparent" }. An
--   unknown name raises "bad argument #1 to 'lunbound.new' (syntax
--   error)", and so does a list entry ({ "name: value" }); a number value
--   is turned into a string; a boolean value crashes the process (a NULL
--   string reaches libunbound). One value per name.
-- * For a zone under test., "local-zone:" = "test. transparent" is needed:
--   test. is one of unbound's default local zones, which answers NXDOMAIN
--   (rcode 3, secure false, no bogus, so it reads as insecure) without
--   sending anything. "test. nodefault" (what an unbound.conf says) and
--   '"test." transparent' have no effect through ub_ctx_set_option.
--   "do-not-query-localhost:" = "no" is not needed for a forwarder on
--   127.0.0.1 in libunbound, lua-unbound and unbound-host alike (the same
--   answers without it; the unbound daemon does need it); it is set anyway.
-- * ub:resolve(name, qtype) takes the type as a number (a string raises
--   "number expected"; no type means A) and returns one table: qname, qtype,
--   qclass, rcode (numbers), havedata, nxdomain, secure (booleans), n (the
--   number of records), canonname only after a CNAME, bogus (the why_bogus
--   string) only when bogus, and the records' RDATA in wire form at [1..n].
--   Per case (SRV, A and TLSA alike):
--     secure    rcode 0, havedata, secure true, no bogus, data;
--     insecure  rcode 0, havedata, secure false, no bogus, data;
--     tampered  rcode 0, havedata, secure false, data STILL RETURNED, bogus =
--               "validation failure <NAME TYPE IN>: ECDSA signature
--               verification failed from 127.0.0.1";
--     expired   rcode 0, havedata, secure false, data still returned, bogus =
--               "validation failure <NAME TYPE IN>: signature expired from
--               127.0.0.1 for key expired.xmpp.test. while building chain of
--               trust".
--   So bogus is told by the bogus field alone (rcode is the server's, not
--   SERVFAIL), and secure false without bogus is insecure only when rcode is
--   0 or 3. A secure NXDOMAIN or NODATA has secure true, havedata false
--   (rcode 3 or 0); under tampered. (NSEC signatures changed too) the same
--   questions are bogus ("... for <OWNER NSEC IN>").
-- * Time: new() under a millisecond; the first query of a context 2-4 ms on
--   loopback (DNSKEY fetched and validated), later ones 0.3-0.4 ms from its
--   cache; a bogus answer is not served from cache (1.3 ms each time). A
--   forwarder that does not answer (closed port) gives rcode 2 (SERVFAIL),
--   secure false, no bogus, after about 17 seconds: resolve() has no
--   timeout of its own. resolve_async(cb, name, qtype) returns a query
--   object (tostring "ub_query.pending(1): ...", then "ub_query.done");
--   cb(result) gets the same table as resolve() and runs from ctx:process()
--   (or ctx:wait(), which blocks); ctx:poll() tells whether answers wait,
--   ctx:getfd() is the descriptor to select on; ctx:cancel(query) returns
--   true and the callback never runs, so a caller with a deadline cancels.
--   With async = true (the default) libunbound resolves in a thread, with
--   async = false in a forked process; both answer the same, all four
--   cases in about 7 ms together.
-- * Signature times: libunbound accepts a signature up to 10% of its
--   lifetime past expiration, at least an hour and at most a day
--   (val-sig-skew-min/max): expired a day minus ten minutes ago still
--   validates, a day and ten minutes ago is bogus; delv allows no skew.
--   expired.ZONE's signatures therefore ended two days ago by default.
local socket = require "socket"
local sh = require "spec.helpers.sh"
local pki = require "spec.helpers.pki"
local dns_servers = require "spec.helpers.dns_servers"

local M = {}

local q = sh.quote
local DAY = 86400

--- The four XMPP domains under the parent and the verdict a validator
-- with the parent's anchor must reach for each.
M.cases = { "secure", "insecure", "tampered", "expired" }
M.expected = { secure = "secure", insecure = "insecure", tampered = "bogus", expired = "bogus" }

--- Whether every program the fixture needs is installed: true, or false
-- and the first one missing.
function M.available()
  for _, cmd in ipairs({ "nsd", "ldns-keygen", "ldns-signzone", "dig", "timeout" }) do
    if not dns_servers.have(cmd) then return false, cmd .. " is not installed" end
  end
  return true
end

local function lua_bin()
  return "lua" .. _VERSION:match("%d+%.%d+")
end

--- Whether validate_with can run tool ("unbound-host", "delv", "lunbound").
function M.have_validator(tool)
  if tool == "lunbound" then
    return (sh.exec(("timeout 10 %s -e 'require \"lunbound\"'"):format(lua_bin())))
  end
  return (dns_servers.have(tool))
end

local function stamp(t) return os.date("!%Y%m%d%H%M%S", t) end

local function keygen(dir, zone, ksk)
  return sh.run(("cd %s && timeout 30 ldns-keygen -a ECDSAP256SHA256 %s %s"):format(
    q(dir), ksk and "-k" or "", q(zone))):match("%S+")
end

-- Sign dir/file for origin with fresh keys; returns the KSK's base name.
local function sign(dir, file, origin, inception, expiration)
  local ksk, zsk = keygen(dir, origin, true), keygen(dir, origin, false)
  sh.run(("cd %s && timeout 30 ldns-signzone -i %s -e %s -f %s -o %s %s %s %s"):format(q(dir),
    stamp(inception), stamp(expiration), q(file .. ".signed"), q(origin), q(file), q(ksk), q(zsk)))
  return ksk
end

-- The records of one XMPP domain, relative to its zone's origin (sub is
-- "" for a child zone's apex, or "secure" in the parent).
local function domain_records(sub, opts, tlsa, target)
  local at = sub == "" and "" or "." .. sub
  local apex = sub == "" and "@" or sub
  target = target or ("host" .. at)
  local lines = {
    ("%s A %s"):format(apex, opts.address),
    ("_xmpp-client._tcp%s SRV 0 5 %d %s"):format(at, opts.client_port, target),
    ("_xmpp-server._tcp%s SRV 0 5 %d %s"):format(at, opts.server_port, target),
    ("host%s A %s"):format(at, opts.address),
  }
  for _, r in ipairs(tlsa) do
    lines[#lines + 1] = ("_%d._tcp.host%s TLSA %d %d %d %s"):format(r.port, at,
      r.usage or 3, r.selector or 1, r.mtype or 1, r.data)
  end
  return lines
end

local function zone_head(origin)
  return { "$ORIGIN " .. origin, "$TTL 300",
    ("@ IN SOA ns.%s hostmaster.%s 1 3600 600 86400 300"):format(origin, origin),
    ("@ IN NS ns.%s"):format(origin), ("ns.%s IN A 127.0.0.1"):format(origin) }
end

-- A path as unbound.conf and nsd.conf quote it.
local function cq(s) return '"' .. s .. '"' end

local function write_zone(path, lines)
  pki.write(path, table.concat(lines, "\n") .. "\n")
end

--- Change one byte of the signature of every RRSIG whose owner is at or
-- under suffix (a signed zone file's text, as ldns-signzone writes it: one
-- record a line, the signature's base64 last).
function M.tamper(text, suffix, covers)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local owner, covered = line:match("^(%S+)%s+%d+%s+IN%s+RRSIG%s+(%S+)")
    local under = owner and (owner:lower() == suffix or owner:lower():sub(-#suffix - 1) == "." .. suffix)
    if under and (not covers or covers[covered]) then
      local head, sig = line:match("^(.*%s)(%S+)$")
      local c = sig:sub(10, 10)
      line = head .. sig:sub(1, 9) .. (c == "A" and "B" or "A") .. sig:sub(11)
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n")
end

local function wait_soa(port, zone, seconds)
  local deadline = socket.gettime() + seconds
  repeat
    local ok, out = sh.exec(("timeout 3 dig +short +time=1 +tries=1 @127.0.0.1 -p %d SOA %s"):format(port, q(zone)))
    if ok and out:find("%S") then return true end
    socket.sleep(0.05)
  until socket.gettime() > deadline
  return false
end

local function nsd_conf(dir, port, zone, insecure, expired)
  return {
    "server:",
    "  ip-address: 127.0.0.1", "  port: " .. port, "  do-ip4: yes", "  do-ip6: no",
    '  username: ""', '  chroot: ""', "  zonesdir: " .. cq(dir), '  database: ""',
    "  pidfile: " .. cq(dir .. "/nsd.pid"), "  xfrdfile: " .. cq(dir .. "/xfrd.state"),
    "  zonelistfile: " .. cq(dir .. "/zone.list"), "  xfrdir: " .. cq(dir),
    "  cookie-secret-file: " .. cq(dir .. "/cookiesecrets.txt"),
    "  server-count: 1", "  reuseport: no", "  verbosity: 1", "  hide-version: yes",
    "  round-robin: no", "  refuse-any: yes",
    "remote-control:", "  control-enable: no",
    "zone:", "  name: " .. zone, "  zonefile: parent.zone.signed",
    "zone:", "  name: " .. insecure, "  zonefile: insecure.zone",
    "zone:", "  name: " .. expired, "  zonefile: expired.zone.signed",
  }
end

--- Whether process pid is running (a zombie waiting for init is not).
function M.running(pid)
  local ok, out = sh.exec("ps -o stat= -p " .. pid)
  return ok and out:find("%S") ~= nil and not out:find("^%s*Z")
end

-- nsd's main process and the processes below it (its server and xfrd).
local function process_tree(pid)
  local children = {}
  for _, line in ipairs(sh.lines("ps -e -o pid= -o ppid=")) do
    local p, pp = line:match("(%d+)%s+(%d+)")
    if p then
      children[pp] = children[pp] or {}
      table.insert(children[pp], p)
    end
  end
  local tree, i = { tostring(pid) }, 1
  while tree[i] do
    for _, c in ipairs(children[tree[i]] or {}) do tree[#tree + 1] = c end
    i = i + 1
  end
  return tree
end

-- Stop nsd: SIGTERM to its main process, which stops the others; SIGKILL
-- to all of them after three seconds.
local function kill(handle)
  local pid = handle.pid
  if not pid then return end
  local tree = process_tree(pid)
  sh.exec("kill " .. pid .. " 2>/dev/null")
  local function any()
    for _, p in ipairs(tree) do if M.running(p) then return true end end
    return false
  end
  for _ = 1, 150 do
    if not any() then break end
    socket.sleep(0.02)
  end
  sh.exec("kill -9 " .. table.concat(tree, " ") .. " 2>/dev/null")
  handle.pid = nil
end

--- Start nsd serving the zones. opts:
--   zone ("xmpp.test."), address (the A records' address, "127.0.0.1"),
--   client_port (5222), server_port (5269): the SRV targets' ports;
--   tlsa: a list of { port, usage (3), selector (1), mtype (1), data = hex }
--     for every domain, or a function(case) returning such a list
--     (default: one 3 1 1 record on client_port whose data matches nothing);
--   inception, expiration: the parent's signature times (os.time() values;
--     default a day ago and thirty days on), so that the whole zone can be
--     made expired;
--   expired_inception, expired_expiration: the same for expired.ZONE
--     (default 32 and 2 days ago);
--   tamper_types: a list (or set) of the RR types whose RRSIGs are changed
--     under tampered.ZONE (default all: SRV, A, TLSA, NSEC);
--   srv_targets: { [case] = "host.secure.xmpp.test." }: another target (an
--     absolute name) for a case's two SRV records (default its own host).
-- Returns a handle: port, address ("127.0.0.1"), server ("127.0.0.1@PORT",
-- unbound's forward form), zone, dir, anchor (the DS line), dnskey (the
-- KSK's DNSKEY line), anchor_file (the DS as a zone-file line, for
-- unbound's trust-anchor-file, libunbound's trustfile, unbound-host -f),
-- dnskey_file (the DNSKEY line, the same way), delv_anchor_file
-- (trust-anchors { ZONE static-ds ...; }; for delv -a with +root=ZONE;
-- unbound-host -F does not read static-ds), names (per case: domain, client_srv, server_srv, host,
-- tlsa = { owner names }), pid (nsd's main process, nil once stopped),
-- log(), stop() (nsd stopped, dir removed).
function M.start(opts)
  opts = opts or {}
  local ok, why = M.available()
  if not ok then error(why) end
  local zone = opts.zone or "xmpp.test."
  if zone:sub(-1) ~= "." then zone = zone .. "." end
  local o = {
    address = opts.address or "127.0.0.1",
    client_port = opts.client_port or 5222,
    server_port = opts.server_port or 5269,
    srv_targets = opts.srv_targets or {},
  }
  local function tlsa_for(case)
    if type(opts.tlsa) == "function" then return opts.tlsa(case) or {} end
    return opts.tlsa or { { port = o.client_port, usage = 3, selector = 1, mtype = 1,
      data = ("0"):rep(64) } }
  end
  local now = os.time()
  local dir = pki.tmpdir()
  local handle = { address = "127.0.0.1", zone = zone, dir = dir, names = {} }
  function handle.log()
    local f = io.open(dir .. "/nsd.log", "rb")
    if not f then return "" end
    local s = f:read("*a")
    f:close()
    return s
  end
  function handle.stop()
    kill(handle)
    pki.cleanup(dir)
  end

  local built, err = pcall(function()
    for _, case in ipairs(M.cases) do
      local domain = case .. "." .. zone
      local n = { domain = domain, client_srv = "_xmpp-client._tcp." .. domain,
        server_srv = "_xmpp-server._tcp." .. domain, host = "host." .. domain, tlsa = {} }
      for _, r in ipairs(tlsa_for(case)) do n.tlsa[#n.tlsa + 1] = ("_%d._tcp.%s"):format(r.port, n.host) end
      handle.names[case] = n
    end
    -- the unsigned child
    local insecure = "insecure." .. zone
    local lines = zone_head(insecure)
    for _, l in ipairs(domain_records("", o, tlsa_for("insecure"), o.srv_targets.insecure)) do lines[#lines + 1] = l end
    write_zone(dir .. "/insecure.zone", lines)
    -- the child whose signatures have expired (two days ago: unbound
    -- allows a clock skew of up to a day, val-sig-skew-max)
    local expired = "expired." .. zone
    lines = zone_head(expired)
    for _, l in ipairs(domain_records("", o, tlsa_for("expired"), o.srv_targets.expired)) do lines[#lines + 1] = l end
    write_zone(dir .. "/expired.zone", lines)
    local expired_ksk = sign(dir, "expired.zone", expired, opts.expired_inception or (now - 32 * DAY),
      opts.expired_expiration or (now - 2 * DAY))
    -- the parent
    lines = zone_head(zone)
    for _, case in ipairs({ "secure", "tampered" }) do
      for _, l in ipairs(domain_records(case, o, tlsa_for(case), o.srv_targets[case])) do lines[#lines + 1] = l end
    end
    for _, child in ipairs({ "insecure", "expired" }) do
      lines[#lines + 1] = ("%s IN NS ns.%s.%s"):format(child, child, zone)
      lines[#lines + 1] = ("ns.%s IN A 127.0.0.1"):format(child)
    end
    lines[#lines + 1] = (pki.read(dir .. "/" .. expired_ksk .. ".ds"):gsub("%s+$", ""))
    write_zone(dir .. "/parent.zone", lines)
    local ksk = sign(dir, "parent.zone", zone, opts.inception or (now - DAY), opts.expiration or (now + 30 * DAY))
    local covers = opts.tamper_types
    if covers and covers[1] then
      local set = {}
      for _, t in ipairs(covers) do set[t] = true end
      covers = set
    end
    pki.write(dir .. "/parent.zone.signed",
      M.tamper(pki.read(dir .. "/parent.zone.signed"), "tampered." .. zone, covers))

    -- the anchors
    handle.anchor = (pki.read(dir .. "/" .. ksk .. ".ds"):gsub("%s+$", ""))
    handle.dnskey = (pki.read(dir .. "/" .. ksk .. ".key"):gsub("%s*;.*$", ""):gsub("%s+$", ""))
    handle.anchor_file = pki.write(dir .. "/anchor.ds", handle.anchor .. "\n")
    handle.dnskey_file = pki.write(dir .. "/anchor.dnskey", handle.dnskey .. "\n")
    local tag, alg, dt, digest = handle.anchor:match("DS%s+(%d+)%s+(%d+)%s+(%d+)%s+(%x+)")
    handle.delv_anchor_file = pki.write(dir .. "/anchor.conf",
      ('trust-anchors {\n  %s static-ds %s %s %s "%s";\n};\n'):format(zone, tag, alg, dt, digest:upper()))

    -- nsd, on a port that was free a moment ago; on another one when some
    -- other process took it in between
    for attempt = 1, 3 do
      local port = dns_servers.free_port("127.0.0.1")
      handle.port, handle.server = port, "127.0.0.1@" .. port
      write_zone(dir .. "/nsd.conf", nsd_conf(dir, port, zone, insecure, expired))
      handle.pid = tonumber(sh.run(("nsd -d -c %s > %s 2>&1 & echo $!"):format(
        q(dir .. "/nsd.conf"), q(dir .. "/nsd.log"))):match("%d+"))
      if wait_soa(port, zone, 10) then break end
      local log = handle.log()
      kill(handle)
      if attempt == 3 or not log:find("bind") then error("nsd did not answer:\n" .. log) end
    end
  end)
  if not built then
    handle.stop()
    error(err, 0)
  end
  return handle
end

--- Run fn(handle) with a zone started from opts, and stop it whatever fn
-- does; returns what fn returns, or raises what it raised.
function M.with(opts, fn)
  local handle = M.start(opts)
  local res = table.pack(pcall(fn, handle))
  handle.stop()
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- The options libunbound needs to validate against this zone on loopback.
local function unbound_options(handle)
  local o = { ["do-not-query-localhost:"] = "no", ["do-ip6:"] = "no" }
  if handle.zone:find("%.test%.$") or handle.zone == "test." then o["local-zone:"] = "test. transparent" end
  return o
end

--- The table for require("lunbound").new that validates against the zone.
function M.lunbound_config(handle)
  return { forward = handle.server, trustfile = handle.anchor_file, resolvconf = false,
    hoststxt = false, options = unbound_options(handle) }
end

local function verdict_unbound_host(out)
  local low = out:lower()
  if low:find("%(bogus") then return "bogus" end
  if low:find("%(insecure%)") then return "insecure" end
  if low:find("%(secure%)") then return "secure" end
  return "indeterminate"
end

local function verdict_delv(out)
  if out:find("fully validated") then return "secure" end
  if out:find("unsigned answer") then return "insecure" end
  if out:find("validation failed") or out:find("resolution failed: RRSIG")
      or out:find("no valid signature") or out:find("resolution failed: broken trust chain")
      or out:find("failed: insecurity proof failed") then
    return "bogus"
  end
  return "indeterminate"
end

-- A Lua chunk run in a child process: one resolve, its fields printed as
-- key=value lines (strings %q-quoted), the records as data=HEX lines.
local LUNBOUND_CHILD = [[
local cfg = assert(load("return " .. arg[1]))()
local t0 = require("socket").gettime()
local ub = require("lunbound").new(cfg)
local r, err = ub:resolve(arg[2], tonumber(arg[3]) or arg[3])
print(("time=%.3f"):format(require("socket").gettime() - t0))
if not r then print("error=" .. ("%q"):format(tostring(err))) return end
local keys = {}
for k in pairs(r) do if type(k) == "string" then keys[#keys + 1] = k end end
table.sort(keys)
for _, k in ipairs(keys) do
  local v = r[k]
  print(k .. "=" .. (type(v) == "string" and ("%q"):format(v) or tostring(v)))
end
for i = 1, #r do print("data=" .. (r[i]:gsub(".", function(c) return ("%02x"):format(c:byte()) end))) end
]]

local function serialize(v)
  if type(v) == "table" then
    local parts = {}
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = ("[%s]=%s"):format(serialize(k), serialize(v[k])) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

local TYPES = { A = 1, NS = 2, SOA = 6, AAAA = 28, SRV = 33, DS = 43, RRSIG = 46, NSEC = 47, DNSKEY = 48, TLSA = 52 }

--- The fields of a lua-unbound result as the child printed them:
-- { time = seconds, error = ..., rcode = n, secure = bool, ..., data = { hex, ... } }.
function M.lunbound_fields(out)
  local r = { data = {} }
  for line in out:gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k == "data" then
      r.data[#r.data + 1] = v
    elseif k then
      if v == "true" or v == "false" then r[k] = v == "true"
      elseif v:sub(1, 1) == '"' then r[k] = assert(load("return " .. v))()
      else r[k] = tonumber(v) or v end
    end
  end
  return r
end

local function verdict_lunbound(r)
  if r.error or not r.rcode then return "indeterminate" end
  if r.bogus then return "bogus" end
  if r.secure then return "secure" end
  if r.rcode == 0 or r.nxdomain then return "insecure" end
  return "indeterminate"
end

--- Ask tool ("unbound-host", "delv" or "lunbound") whether name's type
-- (default "A") RRset validates under the zone's anchor. Returns the
-- verdict, the raw output, and for lunbound the result's fields.
function M.validate_with(tool, handle, name, rtype)
  rtype = rtype or "A"
  if tool == "unbound-host" then
    local conf = handle.dir .. "/unbound-host.conf"
    local lines = { "server:", '  username: ""', '  chroot: ""', "  directory: " .. cq(handle.dir),
      "  use-syslog: no", "  verbosity: 0", '  module-config: "validator iterator"',
      "  trust-anchor-file: " .. cq(handle.anchor_file) }
    for k, v in pairs(unbound_options(handle)) do lines[#lines + 1] = "  " .. k .. " " .. v end
    lines[#lines + 1] = "forward-zone:"
    lines[#lines + 1] = '  name: "."'
    lines[#lines + 1] = "  forward-addr: " .. handle.server
    write_zone(conf, lines)
    local _, out = sh.exec(("timeout 15 unbound-host -C %s -v -t %s %s"):format(q(conf), q(rtype), q(name)))
    return verdict_unbound_host(out), out
  elseif tool == "delv" then
    local _, out = sh.exec(("timeout 15 delv @127.0.0.1 -p %d -a %s +root=%s -t %s %s +nocrypto +vtrace"):format(
      handle.port, q(handle.delv_anchor_file), q(handle.zone), q(rtype), q(name)))
    return verdict_delv(out), out
  elseif tool == "lunbound" then
    local script = pki.write(handle.dir .. "/lunbound_child.lua", LUNBOUND_CHILD)
    local _, out = sh.exec(("timeout 15 %s %s %s %s %s"):format(lua_bin(), q(script),
      q(serialize(M.lunbound_config(handle))), q(name), q(TYPES[rtype] or rtype)))
    local r = M.lunbound_fields(out)
    return verdict_lunbound(r), out, r
  end
  error("unknown validator " .. tostring(tool))
end

return M
