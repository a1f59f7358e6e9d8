--- What a scan's target and its target options say, with no I/O: a DOMAIN
-- (its SRV records say where its endpoints are) or HOST:PORT with
-- `starttls` ("c2s", "s2s", "none") and `xmpphost` (the XMPP domain), and
-- `kind`. `tlsharden.scan` and a survey list's lines read targets here, so
-- that a list line says what a scan's arguments say. See docs/reference/target.md.
local errors = require "tlsharden.errors"
local dns = require "tlsharden.scan.dns"

local M = {}

local function is_ipv4(s)
  local p = dns.parse_server(s)
  return p ~= nil and p.family == "inet" and p.host == s
end

local function is_ip(s)
  local p = dns.parse_server(s)
  return p ~= nil and (p.host == s or ("[" .. p.host .. "]") == s)
end

--- Whether s is a domain name as XMPP takes one: labels of letters,
-- digits, '-' and '_', not an IPv4 address.
function M.is_name(s)
  if type(s) ~= "string" or #s == 0 or #s > 253 or s:find("^%.") or s:find("%.%.") then return false end
  for label in (s:gsub("%.$", "")):gmatch("[^.]+") do
    if #label > 63 or not label:find("^[%w_-]+$") then return false end
  end
  return not is_ipv4(s)
end
local is_name = M.is_name

--- Parse a target: "example.org" -> { domain = "example.org" };
-- "host:5222", "192.0.2.1:5222", "[2001:db8::1]:5222" -> { host, port,
-- literal (the host is an address) }. Returns nil, reason for anything else.
function M.parse(target)
  if type(target) ~= "string" or target == "" then return nil, "expected DOMAIN or HOST:PORT" end
  if target:find("[%s/@]") then return nil, "expected DOMAIN or HOST:PORT, without spaces, '/' or '@'" end
  local host, port = target:match("^%[([^%]]+)%]:(%d+)$")
  if host then
    local p = dns.parse_server(host)
    if not p or p.family ~= "inet6" then return nil, "not an IPv6 address in brackets" end
    host = p.host
  else
    local rest
    host, rest = target:match("^([^:]+):(.*)$")
    if host then
      port = rest:match("^(%d+)$")
      if not port then
        if rest:find(":", 1, true) then return nil, "an IPv6 address needs brackets and a port: [::1]:5222" end
        return nil, "expected a port number after ':'"
      end
    end
  end
  if port then
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "port out of range (1-65535)" end
    if not is_ip(host) and not is_name(host) then return nil, "not a host name or address" end
    return { host = host, port = port, literal = is_ip(host) }
  end
  if is_ip(target) then
    if target:find(":", 1, true) then return nil, "an IPv6 address needs brackets and a port: [::1]:5222" end
    return nil, "an address needs a port (ADDRESS:PORT), and xmpphost for the domain"
  end
  if not is_name(target) then return nil, "not a domain name" end
  return { domain = target:gsub("%.$", ""):lower() }
end

--- The kinds a `kind` option names: "c2s", "s2s" or "both" (nil: both).
local KINDS = { c2s = { "c2s" }, s2s = { "s2s" }, both = { "c2s", "s2s" } }
function M.kinds(kind) return KINDS[kind or "both"] end

--- What a target and its target options (opts.kind, opts.starttls,
-- opts.xmpphost) say: { target, domain, kind (nil: both), and for
-- HOST:PORT host, port, literal, service_kind, tls }; or nil, the name of
-- what is wrong ("target" or an option's) and why (the value quoted).
function M.resolve(target, opts)
  local t, why = M.parse(target)
  if not t then return nil, "target", ("%s: %s"):format(why, errors.quote(target)) end
  if opts.kind ~= nil and not KINDS[opts.kind] then
    return nil, "kind", ("expected 'c2s', 's2s' or 'both', got %s"):format(errors.quote(opts.kind))
  end
  local o = { target = target, kind = opts.kind ~= "both" and opts.kind or nil }
  if t.domain then
    if opts.starttls ~= nil then
      return nil, "starttls", ("is for HOST:PORT targets; %s is a domain (its SRV records say)"):format(errors.quote(target))
    end
    if opts.xmpphost ~= nil then
      return nil, "xmpphost", ("is for HOST:PORT targets; %s is the domain"):format(errors.quote(target))
    end
    o.domain = t.domain
    return o
  end
  local st = opts.starttls
  if st ~= nil and st ~= "c2s" and st ~= "s2s" and st ~= "none" then
    return nil, "starttls", ("expected 'c2s', 's2s' or 'none', got %s"):format(errors.quote(st))
  end
  if st and st ~= "none" and o.kind and o.kind ~= st then
    return nil, "starttls", ("%s STARTTLS contradicts kind %s"):format(errors.quote(st), errors.quote(o.kind))
  end
  st = st or o.kind or "c2s"
  o.host, o.port, o.literal = t.host, t.port, t.literal
  o.service_kind = st == "none" and (o.kind or "c2s") or st
  o.tls = st == "none" and "direct" or "starttls"
  if opts.xmpphost ~= nil then
    if not is_name(opts.xmpphost) then
      return nil, "xmpphost", ("expected a domain name, got %s"):format(errors.quote(opts.xmpphost))
    end
    o.domain = opts.xmpphost:gsub("%.$", ""):lower()
  elseif t.literal then
    return nil, "target", ("%s is an address: the XMPP domain (the stream's 'to') must be given as xmpphost")
      :format(errors.quote(target))
  else
    o.domain = t.host:lower()
  end
  return o
end

--- M.resolve, raising as fn (argn: the target's argument number).
function M.check(fn, argn, target, opts)
  local o, what, why = M.resolve(target, opts)
  if o then return o end
  if what == "target" then errors.argument(fn, argn, "target", "%s", why) end
  errors.option(fn, what, "%s", why)
end

return M
