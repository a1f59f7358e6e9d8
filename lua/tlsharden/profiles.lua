--- Configuration profiles: each is a fresh merge layer (a LuaSec-style
-- table with a `name` and a `_profile` marker, so that tlsharden.merge knows
-- when a later layer replaces a profile's cipher list wholesale).
local ssl = require "ssl"
local core = require "tlsharden.core"
local errors = require "tlsharden.errors"

local profiles = {}

local MOZILLA_TLS13 = { "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256" }
local MOZILLA_GROUPS = { "X25519", "prime256v1", "secp384r1" }
local MOZILLA_INTERMEDIATE = {
  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384",
}
local MOZILLA_OLD = {
  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
  "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA",
  "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384",
  "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA", "DHE-RSA-AES128-SHA256",
  "DHE-RSA-AES256-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256",
  "AES256-SHA256", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA",
}

-- Groups the running OpenSSL (through LuaSec) knows; the rest are left out
-- and recorded in the profile's `_skipped_groups`.
local function known_groups(list)
  local known = ssl.config and ssl.config.curves
  local keep, skipped = {}, {}
  for _, g in ipairs(list) do
    if not known or known[g] then keep[#keep + 1] = g else skipped[#skipped + 1] = g end
  end
  return keep, skipped
end

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

local function split(list)
  local t = {}
  for item in list:gmatch("[^:]+") do t[#t + 1] = item end
  return t
end

-- The hardened profile: the default harden policy's floor, TLS 1.3 suites,
-- groups, depth and switches, so that the two cannot drift apart.
local function hardened_layer()
  local d = core.context.harden_defaults()
  local tls13_off  -- nil: the profile says nothing of TLS 1.3
  if d.tls13 then tls13_off = false end
  return {
    protocol = d.min_version .. "+",
    options = {
      no_compression = not d.compression, no_renegotiation = not d.renegotiation,
      cipher_server_preference = d.server_preference, no_tlsv1_3 = tls13_off,
      no_tlsv1_2 = false,
    },
    -- what filter_ciphers keeps of Mozilla's intermediate list, AEAD only
    ciphers = {
      "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
      "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
      "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    },
    ciphersuites = split(d.ciphersuites),
    curveslist = split(d.groups),
    depth = d.depth,
  }
end

local definitions = {
  -- Prosody 0.12's built-in defaults (core/certmanager.lua, "core_defaults"),
  -- as LuaSec 1.2 with OpenSSL 3 sees them.
  prosody = {
    source = "Prosody 0.12 built-in defaults",
    layer = {
      capath = "/etc/ssl/certs",
      depth = 9,
      protocol = "tlsv1+",
      verify = "none",
      options = {
        cipher_server_preference = true, no_ticket = true, no_compression = true,
        single_dh_use = true, single_ecdh_use = true, no_renegotiation = true,
      },
      verifyext = { "lsec_continue", "lsec_ignore_purpose" },
      curveslist = { "X25519", "P-384", "P-256", "P-521" },
      ciphers = { "HIGH+kEECDH", "HIGH+kEDH", "HIGH", "!PSK", "!SRP", "!3DES", "!aNULL" },
    },
  },
  -- Mozilla Server Side TLS as Prosody 0.12 ships it (guidelines 5.6).
  modern = {
    source = "Mozilla Server Side TLS 5.6 'modern', as shipped by Prosody 0.12",
    layer = {
      protocol = "tlsv1_3",
      options = { cipher_server_preference = false },
      ciphers = "DEFAULT",
      curveslist = MOZILLA_GROUPS,
      ciphersuites = MOZILLA_TLS13,
    },
  },
  intermediate = {
    source = "Mozilla Server Side TLS 5.6 'intermediate', as shipped by Prosody 0.12",
    layer = {
      protocol = "tlsv1_2+",
      options = { cipher_server_preference = false },
      ciphers = MOZILLA_INTERMEDIATE,
      curveslist = MOZILLA_GROUPS,
      ciphersuites = MOZILLA_TLS13,
    },
  },
  old = {
    source = "Mozilla Server Side TLS 5.6 'old', as shipped by Prosody 0.12",
    layer = {
      protocol = "tlsv1+",
      options = { cipher_server_preference = true },
      ciphers = MOZILLA_OLD,
      curveslist = MOZILLA_GROUPS,
      ciphersuites = MOZILLA_TLS13,
    },
  },
  -- tlsharden's own default: the rules of the default harden policy
  -- (core.context.harden_defaults, owned by the core) as a merge layer, with only
  -- forward-secret AEAD suites for TLS 1.2.
  hardened = {
    source = "tlsharden hardened 1",
    layer = hardened_layer(),
  },
}

--- The names of every profile.
function profiles.names()
  local t = {}
  for name in pairs(definitions) do t[#t + 1] = name end
  table.sort(t)
  return t
end

--- Whether name is a profile.
function profiles.exists(name)
  return definitions[name] ~= nil
end

--- A fresh layer for profile `name`; an unknown name is an error.
function profiles.get(name)
  if type(name) ~= "string" then
    errors.argument("profile", 1, "name", "expected a string, got %s", errors.quote(name))
  end
  local def = definitions[name]
  if not def then
    errors.argument("profile", 1, "name", "unknown profile %s (known: %s)", errors.quote(name),
      table.concat(profiles.names(), ", "))
  end
  local layer = copy(def.layer)
  layer.name = "profile " .. name
  layer._profile = name
  layer._source = def.source
  if layer.curveslist then
    local keep, skipped = known_groups(layer.curveslist)
    layer.curveslist = keep
    if #skipped > 0 then layer._skipped_groups = skipped end
  end
  return layer
end

-- Layers built once for tlsharden's own use: merging never changes a
-- layer, so new_context can share them instead of copying each time.
local shared = {}

--- The profile layer for internal, read-only use (never hand it out).
function profiles.shared(name)
  local layer = shared[name]
  if not layer then
    layer = profiles.get(name)
    shared[name] = layer
  end
  return layer
end

return profiles
