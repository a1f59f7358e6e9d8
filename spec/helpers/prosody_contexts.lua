-- Run by spec/audit_spec.lua in its own lua5.4 process: load a real
-- Prosody's configmanager and certmanager (0.12 or 13, from the source
-- directory given) with a configuration and print, as JSON, the final
-- configuration create_context produces for each host's c2s, s2s in and
-- s2s out contexts, called with the arguments that version's mod_tls uses.
--   lua5.4 spec/helpers/prosody_contexts.lua VERSION SOURCE_DIR CONFIG HOST...
local version, src, path = arg[1], arg[2], arg[3]
package.path = src .. "/?.lua;" .. package.path
package.cpath = src .. "/?.so;" .. package.cpath
local cjson = require "cjson"
local prefix = ""
if version == "13" then
  -- 13's modules require each other as prosody.*; its loader maps the names
  require "loader"
  prefix = "prosody."
end
_G.prosody = { paths = { config = path:match("^(.*)/") or "." },
  events = require(prefix .. "util.events").new(), hosts = {}, platform = "posix",
  process_type = "prosodyctl" }
local configmanager = require(prefix .. "core.configmanager")
assert(configmanager.load(path))
local certmanager = require(prefix .. "core.certmanager")
local rawget = configmanager.rawget

local out = {}
for i = 4, #arg do
  local host = arg[i]
  local NULL = {}
  local parent = host:match("%.(.*)$")
  local parent_ssl = rawget(parent, "ssl") or NULL
  local host_ssl = rawget(host, "ssl") or parent_ssl
  local global_c2s = rawget("*", "c2s_ssl") or NULL
  local host_c2s = rawget(host, "c2s_ssl") or rawget(parent, "c2s_ssl") or NULL
  local global_s2s = rawget("*", "s2s_ssl") or NULL
  local host_s2s = rawget(host, "s2s_ssl") or rawget(parent, "s2s_ssl") or NULL
  local request_client_certs = { verify = { "peer", "client_once" } }
  local custom_cert_verification = { verifyext = { "lsec_continue", "lsec_ignore_purpose" } }
  local alpn = { alpn = "xmpp-server" }
  local function final(mode, ...)
    local ctx, err, cfg = certmanager.create_context(host, mode, ...)
    assert(ctx, err)
    cfg.password, cfg.curve, cfg.dane = nil, nil, nil
    for _, key in ipairs { "options", "verifyext" } do
      if cfg[key] then
        local seen, list = {}, {}
        for _, o in ipairs(cfg[key]) do if not seen[o] then seen[o] = true list[#list + 1] = o end end
        table.sort(list)
        cfg[key] = list
      end
    end
    return cfg
  end
  if version == "13" then
    out[host] = {
      c2s = final("server", host_c2s, host_ssl, global_c2s),
      s2s_in = final("server", host_s2s, host_ssl, global_s2s, request_client_certs, custom_cert_verification),
      s2s_out = final("client", host_s2s, host_ssl, global_s2s, alpn, custom_cert_verification),
    }
  else
    out[host] = {
      c2s = final("server", host_c2s, host_ssl, global_c2s),
      s2s_in = final("server", host_s2s, host_ssl, global_s2s, request_client_certs),
      s2s_out = final("client", host_s2s, host_ssl, global_s2s, request_client_certs, alpn),
    }
  end
end
io.write(cjson.encode(out))
