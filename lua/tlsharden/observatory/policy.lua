--- Which endpoints an observatory may scan: public unicast addresses only
-- (loopback, private, shared, link-local, multicast, documentation and
-- reserved ranges refused, IPv4 inside IPv6 judged as IPv4), unless an
-- address falls into the admin's allow list of CIDR ranges; ports found
-- through SRV, or else the standard XMPP ports. Pure: no I/O.
--
--   local p = policy.new { allow = { "127.0.0.0/8" }, ports = { 5222, 5269 } }
--   p:address("10.0.0.1")        --> false, "10.0.0.1 is a private address (10.0.0.0/8)"
--   p:endpoint { address = "192.0.2.7", port = 5222, source = "target" }
local errors = require "tlsharden.errors"

local M = {}

M.PORTS = { 5222, 5223, 5269, 5270 }

-- ---- addresses as 16 bytes ----

local function ipv4_bytes(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local out = {}
  for i, part in ipairs { a, b, c, d } do
    local n = tonumber(part)
    if #part > 3 or n > 255 or (#part > 1 and part:sub(1, 1) == "0") then return nil end
    out[i] = n
  end
  return out
end

local function ipv6_bytes(s)
  if s:find("[^%x:%.]") or #s > 45 then return nil end
  local v4
  local tail = s:match("^.*:(%d+%.%d+%.%d+%.%d+)$")
  if tail then
    v4 = ipv4_bytes(tail)
    if not v4 then return nil end
    s = s:sub(1, #s - #tail) .. "0:0"
  end
  local head, rest = s, nil
  local i = s:find("::", 1, true)
  if i then
    head, rest = s:sub(1, i - 1), s:sub(i + 2)
    if rest:find("::", 1, true) then return nil end
  end
  local function groups(part)
    local g = {}
    if part == "" then return g end
    for x in (part .. ":"):gmatch("([^:]*):") do
      if x == "" or #x > 4 then return nil end
      g[#g + 1] = tonumber(x, 16)
    end
    return g
  end
  local h, r = groups(head), rest and groups(rest) or {}
  if not h or not r then return nil end
  local words
  if rest then
    if #h + #r > 7 then return nil end
    words = {}
    for _, w in ipairs(h) do words[#words + 1] = w end
    for _ = 1, 8 - #h - #r do words[#words + 1] = 0 end
    for _, w in ipairs(r) do words[#words + 1] = w end
  else
    if #h ~= 8 then return nil end
    words = h
  end
  local out = {}
  for _, w in ipairs(words) do
    out[#out + 1] = math.floor(w / 256)
    out[#out + 1] = w % 256
  end
  if v4 then
    for k = 1, 4 do out[12 + k] = v4[k] end
  end
  return out
end

--- An address's family and bytes: "inet" and 4 bytes, "inet6" and 16;
-- nil for anything else.
function M.parse_address(s)
  if type(s) ~= "string" then return nil end
  s = s:match("^%[(.*)%]$") or s
  s = s:gsub("%%.*$", "")  -- a zone index says nothing about the range
  local b = ipv4_bytes(s)
  if b then return "inet", b end
  b = ipv6_bytes(s)
  if b then return "inet6", b end
  return nil
end

local function in_prefix(bytes, net, bits)
  for i = 1, #net do
    local left = bits - (i - 1) * 8
    if left <= 0 then return true end
    if left >= 8 then
      if bytes[i] ~= net[i] then return false end
    else
      local m = 2 ^ (8 - left)
      if math.floor(bytes[i] / m) ~= math.floor(net[i] / m) then return false end
    end
  end
  return true
end

--- A CIDR range ("10.0.0.0/8", "::1/128", or a lone address) read into
-- { family, bytes, bits, text }; nil and why for anything else.
function M.parse_cidr(s)
  if type(s) ~= "string" then return nil, "expected a string" end
  local addr, bits = s:match("^([^/]+)/(%d+)$")
  if not addr then addr = s end
  local family, bytes = M.parse_address(addr)
  if not family then return nil, "not an IPv4 or IPv6 address" end
  local max = family == "inet" and 32 or 128
  bits = bits and tonumber(bits) or max
  if bits > max then return nil, ("a prefix longer than %d bits"):format(max) end
  return { family = family, bytes = bytes, bits = bits, text = s }
end

-- The ranges no public scan may reach (RFC 6890's special-purpose
-- registries, with multicast and what is not global unicast in IPv6).
local SPECIAL = {
  { "0.0.0.0/8", "a 'this network' address" },
  { "10.0.0.0/8", "a private address" },
  { "100.64.0.0/10", "a shared (carrier-grade NAT) address" },
  { "127.0.0.0/8", "a loopback address" },
  { "169.254.0.0/16", "a link-local address" },
  { "172.16.0.0/12", "a private address" },
  { "192.0.0.0/24", "an IETF protocol address" },
  { "192.0.2.0/24", "a documentation address" },
  { "192.88.99.0/24", "a 6to4 relay address" },
  { "192.168.0.0/16", "a private address" },
  { "198.18.0.0/15", "a benchmarking address" },
  { "198.51.100.0/24", "a documentation address" },
  { "203.0.113.0/24", "a documentation address" },
  { "224.0.0.0/4", "a multicast address" },
  { "240.0.0.0/4", "a reserved address" },
  { "::/128", "the unspecified address" },
  { "::1/128", "a loopback address" },
  { "100::/64", "a discard address" },
  { "2001::/23", "an IETF protocol address" },
  { "2001:db8::/32", "a documentation address" },
  { "3fff::/20", "a documentation address" },
  { "fc00::/7", "a unique local (private) address" },
  { "fe80::/10", "a link-local address" },
  { "ff00::/8", "a multicast address" },
}
for i, s in ipairs(SPECIAL) do
  SPECIAL[i] = { range = assert(M.parse_cidr(s[1])), why = s[2] }
end
local GLOBAL6 = assert(M.parse_cidr("2000::/3"))
-- IPv6 ranges that carry an IPv4 address, judged by that address
local EMBEDDED = {
  { range = assert(M.parse_cidr("::ffff:0:0/96")), at = 13 },  -- IPv4-mapped
  { range = assert(M.parse_cidr("::/96")), at = 13 },          -- IPv4-compatible (deprecated)
  { range = assert(M.parse_cidr("64:ff9b::/96")), at = 13 },   -- NAT64
  { range = assert(M.parse_cidr("2002::/16")), at = 3 },       -- 6to4
}

local function matches(range, family, bytes)
  return range.family == family and in_prefix(bytes, range.bytes, range.bits)
end

local function text_of(family, bytes)
  if family == "inet" then return table.concat(bytes, ".") end
  return nil
end

--- Why an address is not public (a text), or nil when it is.
function M.special(address)
  local family, bytes = M.parse_address(address)
  if not family then return "not an IP address" end
  for _, e in ipairs(EMBEDDED) do
    if matches(e.range, family, bytes) and not (e.at == 13 and bytes[13] == 0 and bytes[14] == 0
        and bytes[15] == 0 and bytes[16] <= 1 and e.range.text == "::/96") then
      local v4 = { bytes[e.at], bytes[e.at + 1], bytes[e.at + 2], bytes[e.at + 3] }
      local why = M.special(text_of("inet", v4))
      if why then return why .. " inside IPv6" end
      return nil
    end
  end
  for _, s in ipairs(SPECIAL) do
    if matches(s.range, family, bytes) then return ("%s (%s)"):format(s.why, s.range.text) end
  end
  if family == "inet6" and not matches(GLOBAL6, family, bytes) then
    return "not a global unicast address (outside 2000::/3)"
  end
  return nil
end

local Policy = {}
Policy.__index = Policy

--- A policy. opts: allow (a list of CIDR ranges that may be scanned even
-- though they are not public; default none), ports (the ports a target
-- may name, or an endpoint not found through SRV may use; default
-- M.PORTS; the string "any" for every port), fn (the name in errors).
function M.new(opts)
  opts = opts or {}
  local fn = opts.fn or "observatory.policy"
  local allow = {}
  if opts.allow ~= nil and type(opts.allow) ~= "table" then
    errors.option(fn, "allow", "expected a list of CIDR ranges, got %s", errors.quote(opts.allow))
  end
  for _, s in ipairs(opts.allow or {}) do
    local r, why = M.parse_cidr(s)
    if not r then errors.option(fn, "allow", "%s is %s", errors.quote(s), why) end
    allow[#allow + 1] = r
  end
  local ports
  if opts.ports == "any" then
    ports = "any"
  else
    ports = {}
    if opts.ports ~= nil and type(opts.ports) ~= "table" then
      errors.option(fn, "ports", "expected a list of port numbers or \"any\", got %s", errors.quote(opts.ports))
    end
    for _, p in ipairs(opts.ports or M.PORTS) do
      if type(p) ~= "number" or p % 1 ~= 0 or p < 1 or p > 65535 then
        errors.option(fn, "ports", "expected port numbers, got %s", errors.quote(p))
      end
      ports[p] = true
    end
  end
  return setmetatable({ allow = allow, ports = ports }, Policy)
end

--- true when address may be scanned; false and why otherwise.
function Policy:address(address)
  local family, bytes = M.parse_address(address)
  if not family then return false, ("%s is not an IP address"):format(tostring(address)) end
  for _, r in ipairs(self.allow) do
    if matches(r, family, bytes) then return true end
  end
  local why = M.special(address)
  if why then return false, ("%s is %s"):format(address, why) end
  return true
end

--- true when port may be named by a target (or used without SRV).
function Policy:port(port)
  return self.ports == "any" or self.ports[port] == true
end

--- true when an endpoint of a scan may be connected to; false and why.
function Policy:endpoint(ep)
  local ok, why = self:address(ep.address)
  if not ok then return false, why end
  if ep.source ~= "srv" and not self:port(ep.port) then
    return false, ("port %s is neither found through SRV nor a standard XMPP port"):format(tostring(ep.port))
  end
  return true
end

return M
