--- The rules of tlsharden.harden: the default policy (the `hardened`
-- profile's rules) and the merge of a caller's policy over it. The C side
-- (tlsharden.core.harden) applies a complete policy to the SSL_CTX.
local core = require "tlsharden.core"

local harden = {}

--- Every rule with its default. A rule set to false is switched off.
harden.defaults = {
  min_version = "tlsv1_2",      -- SSL_CTX_set_min_proto_version
  tls13 = true,                 -- clear no_tlsv1_3 and any maximum below TLS 1.3
  compression = false,          -- set no_compression
  renegotiation = false,        -- set no_renegotiation
  security_level = 2,           -- raise to at least this level
  filter_ciphers = true,        -- keep only forward-secret, non-weak TLS 1.2 suites
  aead_only = false,            -- ...and, when true, only AEAD ones
  ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
  groups = "X25519:P-256:P-384",
  depth = 9,                    -- set when the depth is outside depth_min..depth_max
  depth_min = 1,
  depth_max = 16,
  server_preference = true,     -- true: set, false: clear
  num_tickets = 1,              -- TLS 1.3 session tickets sent after a full handshake
  dhe = "auto",                 -- "auto": automatic DH parameters when DHE suites
                                -- cannot work; "drop": remove DHE suites; "keep"
}

--- The complete policy: the defaults with the caller's rules over them.
function harden.policy(user)
  if user ~= nil and type(user) ~= "table" then
    error(("tlsharden.harden: bad argument #2 'policy': expected a table, got %s"):format(type(user)), 3)
  end
  local p = {}
  for k, v in pairs(harden.defaults) do p[k] = v end
  for k, v in pairs(user or {}) do
    if harden.defaults[k] == nil then
      error(("tlsharden.harden: bad policy: unknown rule '%s'"):format(tostring(k)), 3)
    end
    p[k] = v
  end
  return p
end

--- tlsharden.harden(ctx [, policy]): returns { changes = {...}, policy = {...} }.
function harden.harden(ctx, user)
  local p = harden.policy(user)
  return { changes = core.harden(ctx, p), policy = p }
end

return harden
