-- Fuzz target: cipher strings, with ciphersuites and a security level taken
-- from the input (first byte: level and strictness, then "cipher\0suites").
local core = require "tlsharden.core"

return function(data)
  local b = data:byte(1) or 0
  local rest = data:sub(2)
  local spec, suites = rest:match("^([^%z]*)%z(.*)$")
  spec = spec or rest
  local opts = { seclevel = b % 6, strict = b >= 128 }
  if suites then opts.ciphersuites = suites end
  local ok, res = pcall(core.ciphers, spec, opts)
  if ok then
    assert(res.count == #res.suites, "count differs from the suites")
    assert(res.forward_secrecy == "all" or res.forward_secrecy == "some" or res.forward_secrecy == "none")
  else
    assert(core.is_error(res) and res.fn == "ciphers", tostring(res))
  end
  local fok, verdict = pcall(core.forward_secrecy, spec)
  assert(not fok or verdict == "all" or verdict == "some" or verdict == "none")
end
