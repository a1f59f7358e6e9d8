--- sslscan (Debian's 2.0.7) as the reference a scan is compared with: its
-- XML report read into protocols enabled and suite ids per protocol.
local sh = require "spec.helpers.sh"

local M = {}

local VERSIONS = { SSLv2 = "sslv2", SSLv3 = "sslv3", ["TLSv1.0"] = "tlsv1",
  ["TLSv1.1"] = "tlsv1_1", ["TLSv1.2"] = "tlsv1_2", ["TLSv1.3"] = "tlsv1_3" }
local PROTOCOLS = { ["ssl 2"] = "sslv2", ["ssl 3"] = "sslv3", ["tls 1.0"] = "tlsv1",
  ["tls 1.1"] = "tlsv1_1", ["tls 1.2"] = "tlsv1_2", ["tls 1.3"] = "tlsv1_3" }

--- Scan target ("localhost:5222": sslscan names the host in the XMPP
-- stream's 'to'). opts.starttls: "c2s" (--starttls-xmpp), "s2s"
-- (--starttls-xmpp --xmpp-server) or nil (TLS from the start). Returns
-- { versions (lowest first), suites = { [protocol] = { ids } } }.
function M.scan(target, opts)
  opts = opts or {}
  local flags = opts.starttls == "c2s" and "--starttls-xmpp"
    or opts.starttls == "s2s" and "--starttls-xmpp --xmpp-server" or ""
  local xml = sh.run(("sslscan --no-colour --xml=- --no-heartbleed %s %s"):format(flags, sh.quote(target)))
  local r = { versions = {}, suites = {}, xml = xml }
  for ptype, version, enabled in xml:gmatch('<protocol type="(%a+)" version="([%d.]+)" enabled="(%d)"') do
    if enabled == "1" then r.versions[#r.versions + 1] = PROTOCOLS[ptype .. " " .. version] end
  end
  local order = { sslv2 = 1, sslv3 = 2, tlsv1 = 3, tlsv1_1 = 4, tlsv1_2 = 5, tlsv1_3 = 6 }
  table.sort(r.versions, function(a, b) return order[a] < order[b] end)
  for attrs in xml:gmatch("<cipher (.-)/>") do
    local p = VERSIONS[attrs:match('sslversion="([^"]+)"')]
    r.suites[p] = r.suites[p] or {}
    table.insert(r.suites[p], tonumber(attrs:match('id="0x(%x+)"'), 16))
  end
  return r
end

return M
