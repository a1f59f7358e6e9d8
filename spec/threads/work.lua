-- The work of one thread of spec/threads/threads.c: every core function,
-- round after round, in this thread's own Lua state. Returns a digest of
-- the results, which must be the same in every round and every thread.
local cert, key, cafile, rounds = ...
local context = require "tlsharden.context"
local tlsharden = require "tlsharden"
local tls = require "spec.helpers.tls"

local f = assert(io.open(cert))
local pem = f:read("*a")
f:close()

local function round()
  local out = {}
  local function add(v) out[#out + 1] = tostring(v) end
  local p = tlsharden.protocol("tlsv1_2+")
  add(p.min .. "-" .. tostring(p.max_version))
  local c = tlsharden.ciphers("HIGH:!aNULL", { seclevel = 2 })
  add(c.count .. "/" .. c.forward_secrecy)
  add((tlsharden.forward_secrecy("ECDHE+AESGCM:AES128-SHA")))
  local cfg, report = tlsharden.merge({ tlsharden.profile("hardened"), { name = "host", protocol = "tlsv1+", options = { no_ticket = true } } }, { policy = "warn" })
  add(cfg.protocol .. ":" .. table.concat(cfg.options, ",") .. ":" .. #report.warnings)
  add(#context.option_names())
  local ctx, r = tlsharden.new_context { key = key, certificate = cert }
  add(r.context.min .. "/" .. #r.context.tls12_suites)
  add(#tlsharden.harden(ctx).changes)
  local v = tlsharden.versions(ctx)
  add(v.min .. "-" .. #v.versions)
  add((tlsharden.forward_secrecy(ctx)))
  local ch = tlsharden.chain(pem, { cafile = cafile, host = "example.com" })
  local codes = {}
  for _, pr in ipairs(ch.problems) do codes[#codes + 1] = pr.code .. "(" .. tostring(pr.message) .. ")" end
  add(ch.count .. "/" .. table.concat(codes, ","))
  local hs = tls.handshake(ctx, tls.client { protocol = "tlsv1_2" })
  add(hs.ok and tlsharden.forward_secrecy(hs.server) or hs.server_err or hs.client_err)
  hs.close()
  local a = tlsharden.audit('VirtualHost "example.com"\nssl = { protocol = "tlsv1+" }\n',
    { text = true, dir = "/nonexistent" })
  add(#a.hosts)
  add(tlsharden.grade({ protocols = { "tlsv1_2", "tlsv1_3" } }).grade)
  return table.concat(out, " ")
end

local first = round()
for i = 2, rounds do
  local again = round()
  if again ~= first then error(("round %d differs: %s / %s"):format(i, again, first)) end
  if i % 10 == 0 then collectgarbage() end
end
return first
