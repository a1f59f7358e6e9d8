--- tlsharden.scan.clients: the recorded ClientHellos of real TLS stacks
-- as XMPP software uses them (the folder lua/tlsharden/clients/, made by
-- scripts/record-hellos.lua), listed and loaded as plain data. A
-- recording is text, "key: value" lines with the hello as hex; it is read,
-- never run. See docs/reference/clients.md.
--
--   local clients = require "tlsharden.scan.clients"
--   for _, r in ipairs(clients.all()) do print(r.name, r.library, r.hello.server_name) end
local wire = require "tlsharden.wire"
local errors = require "tlsharden.errors"
local protocols = require "tlsharden.protocols"

local M = {}

--- The metadata keys a recording may have; those marked true it must have.
-- min_dh_bits, min_rsa_bits, min_rsa_bits_unverified, min_protocol and
-- limits_source are the stack's limits as measured with the real client
-- (docs/reference/clients.md).
M.FIELDS = { name = true, library = true, version = true, software = true, kind = true, transport = true,
  command = true, recorded = true, sni = false, alpn = false, note = false,
  min_dh_bits = false, min_rsa_bits = false, min_rsa_bits_unverified = false, min_protocol = false,
  limits_source = false }

-- The limits given as a size: a number of bits, or "none" where the
-- stack has no limit of that kind (min_dh_bits: it offers no DHE suite).
local SIZES = { min_dh_bits = true, min_rsa_bits = true, min_rsa_bits_unverified = true }

--- Why a simulated client fails (tlsharden.scan.simulate), as a code the
-- survey report counts and its label.
M.FAILURES = {
  { "no_protocol", "no protocol version in common" },
  { "no_suite", "no suite or group in common" },
  { "refused", "refused with another alert" },
  { "unoffered", "the server chose what the client does not offer" },
  { "dh_too_small", "DH parameters below the client's minimum" },
  { "key_too_small", "an RSA key below the client's minimum" },
  { "no_answer", "no answer, or no TLS" },
  { "error", "cannot connect or send" },
}

local KINDS = { c2s = true, s2s = true }
local TRANSPORTS = { starttls = true, direct = true }
local MAX_BYTES = 256 * 1024

--- The folder of the recordings that came with this module.
function M.dir()
  local source = debug.getinfo(1, "S").source
  local here = source:sub(1, 1) == "@" and source:sub(2):match("^(.*)/scan/[^/]*$")
  if not here then
    local path = package.searchpath("tlsharden.scan.clients", package.path)
    here = path and path:match("^(.*)/scan/[^/]*$")
  end
  if not here then errors.failed("scan.clients.dir", "cannot tell where the module was loaded from") end
  return here .. "/clients"
end

local function slurp(fn, path)
  local f, err = io.open(path, "rb")
  if not f then errors.input(fn, "cannot read %s: %s", path, tostring(err)) end
  local text = f:read(MAX_BYTES + 1)
  f:close()
  text = text or ""
  if #text > MAX_BYTES then errors.input(fn, "%s: over %d bytes, no recording", path, MAX_BYTES) end
  return text
end

local function check_dir(fn, dir, n)
  if dir == nil then return M.dir() end
  if type(dir) ~= "string" or dir == "" then
    errors.argument(fn, n, "dir", "expected a folder name, got %s", errors.quote(dir))
  end
  return dir
end

--- The names of the recordings in dir (default: M.dir()), from its index,
-- in its order.
function M.names(dir)
  local fn = "scan.clients.names"
  dir = check_dir(fn, dir, 1)
  local path = dir .. "/index"
  local names, seen, n = {}, {}, 0
  for line in (slurp(fn, path) .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("%s+$", "")
    if line ~= "" and not line:find("^#") then
      if not line:find("^[%w_-]+$") then
        errors.input(fn, "%s:%d: %s is no recording name", path, n, errors.quote(line))
      end
      if seen[line] then errors.input(fn, "%s:%d: %s is listed twice", path, n, line) end
      seen[line] = true
      names[#names + 1] = line
    end
  end
  return names
end

local function from_hex(fn, path, hex)
  if hex == "" then errors.input(fn, "%s: no hello: lines, it holds no ClientHello", path) end
  if #hex % 2 ~= 0 or hex:find("[^%x]") then
    errors.input(fn, "%s: the hello is not hex (an odd length or a character that is no hex digit)", path)
  end
  return (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

--- Read the recording at path: its metadata fields (M.FIELDS; sni and alpn
-- nil where the client sends none), `alpn_list` (alpn split at commas),
-- `bytes` (the TLS records of the hello), `hello` (what
-- wire.parse_client_hello reads in them) and `path`. A file that is no
-- recording raises an error of kind "input" naming the file.
function M.read(path)
  local fn = "scan.clients.read"
  if type(path) ~= "string" or path == "" then
    errors.argument(fn, 1, "path", "expected a file name, got %s", errors.quote(path))
  end
  local text = slurp(fn, path)
  local rec, hex, n = { path = path }, {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if line ~= "" and not line:find("^#") then
      local key, value = line:match("^([%w_]+):%s?(.*)$")
      if not key then
        errors.input(fn, "%s:%d: not a 'key: value' line: %s", path, n, errors.quote(line))
      elseif key == "hello" then
        hex[#hex + 1] = value:gsub("%s", "")
      elseif M.FIELDS[key] == nil then
        errors.input(fn, "%s:%d: unknown key %s", path, n, errors.quote(key))
      elseif rec[key] ~= nil then
        errors.input(fn, "%s:%d: %s appears twice", path, n, key)
      else
        value = value:gsub("%s+$", "")
        if value ~= "" then rec[key] = value end
      end
    end
  end
  for key, required in pairs(M.FIELDS) do
    if required and not rec[key] then
      errors.input(fn, "%s: names no %s%s", path, key, key == "library" and " (the TLS stack it was recorded from)" or "")
    end
  end
  if not KINDS[rec.kind] then errors.input(fn, "%s: kind %s is neither c2s nor s2s", path, errors.quote(rec.kind)) end
  if not TRANSPORTS[rec.transport] then
    errors.input(fn, "%s: transport %s is neither starttls nor direct", path, errors.quote(rec.transport))
  end
  for key in pairs(SIZES) do
    local v = rec[key]
    if v ~= nil and v ~= "none" then
      if not v:find("^%d+$") or #v > 6 then
        errors.input(fn, "%s: %s %s is neither a number of bits nor 'none'", path, key, errors.quote(v))
      end
      rec[key] = tonumber(v)
    end
  end
  if rec.min_protocol ~= nil and not protocols.rank[rec.min_protocol] then
    errors.input(fn, "%s: min_protocol %s is none of %s", path, errors.quote(rec.min_protocol),
      table.concat(protocols.names, ", "))
  end
  rec.bytes = from_hex(fn, path, table.concat(hex))
  rec.hello = wire.parse_client_hello(rec.bytes)
  if rec.hello.outcome ~= "client_hello" then
    local p = rec.hello.problems[1]
    errors.input(fn, "%s: the hello does not parse (%s%s)", path, rec.hello.outcome,
      p and (": " .. p.message) or rec.hello.need and (", " .. rec.hello.need .. " more bytes needed") or "")
  end
  rec.alpn_list = {}
  for proto in (rec.alpn or ""):gmatch("[^,%s]+") do rec.alpn_list[#rec.alpn_list + 1] = proto end
  return rec
end

--- The recording named name in dir (default: M.dir()).
function M.load(name, dir)
  local fn = "scan.clients.load"
  if type(name) ~= "string" or not name:find("^[%w_-]+$") then
    errors.argument(fn, 1, "name", "expected a recording name (letters, digits, '-', '_'), got %s", errors.quote(name))
  end
  dir = check_dir(fn, dir, 2)
  local rec = M.read(dir .. "/" .. name .. ".hello")
  if rec.name ~= name then
    errors.input(fn, "%s: it names itself %s", rec.path, errors.quote(rec.name))
  end
  return rec
end

--- Every recording of dir (default: M.dir()), in the index's order.
function M.all(dir)
  dir = check_dir("scan.clients.all", dir, 1)
  local out = {}
  for i, name in ipairs(M.names(dir)) do out[i] = M.load(name, dir) end
  return out
end

return M
