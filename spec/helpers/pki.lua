--- Test certificates, generated with the openssl CLI into a fresh temporary
-- directory at test time. Nothing here is committed key material.
local sh = require "spec.helpers.sh"

local pki = {}

local sh_quote = sh.quote
pki.quote = sh.quote
pki.run = sh.run

function pki.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function pki.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

--- A new empty directory under /tmp, removed by pki.cleanup(dir).
function pki.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  pki.run("mkdir -m 700 " .. sh_quote(p))
  return p
end

function pki.cleanup(dir)
  if dir and dir:match("^/tmp/") then sh.exec("rm -rf " .. sh_quote(dir)) end
end

local key_args = {
  rsa1024 = "-algorithm RSA -pkeyopt rsa_keygen_bits:1024",
  rsa2048 = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048",
  rsa4096 = "-algorithm RSA -pkeyopt rsa_keygen_bits:4096",
  ec256 = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256",
  ec384 = "-algorithm EC -pkeyopt ec_paramgen_curve:P-384",
  ed25519 = "-algorithm ED25519",
}

--- Generate a private key of kind (default "ec256") at dir/name.key.
function pki.key(dir, name, kind)
  local args = key_args[kind or "ec256"] or error("unknown key kind " .. tostring(kind))
  local path = dir .. "/" .. name .. ".key"
  pki.run("openssl genpkey " .. args .. " -out " .. sh_quote(path))
  return path
end

--- Issue a certificate. opts:
--   cn (default name), san (list of "DNS:x" etc.), ca (boolean),
--   issuer ({cert=, key=}; nil for self-signed), key_kind, days (default 365),
--   md (default "sha256"), pathlen, ca_issuers (a URL for the Authority
--   Information Access), not_before/not_after ("YYYYMMDDHHMMSSZ",
--   through `openssl ca`).
-- Returns { cert = path, key = path, name = name }.
function pki.cert(dir, name, opts)
  opts = opts or {}
  local key = pki.key(dir, name, opts.key_kind)
  local cert = dir .. "/" .. name .. ".crt"
  local ext = dir .. "/" .. name .. ".ext"
  local lines = {}
  if opts.ca then
    lines[#lines + 1] = "basicConstraints=critical,CA:TRUE" ..
      (opts.pathlen and (",pathlen:" .. opts.pathlen) or "")
    lines[#lines + 1] = "keyUsage=critical,keyCertSign,cRLSign"
  else
    lines[#lines + 1] = "basicConstraints=critical,CA:FALSE"
    lines[#lines + 1] = "keyUsage=critical,digitalSignature,keyEncipherment"
    lines[#lines + 1] = "extendedKeyUsage=serverAuth,clientAuth"
  end
  lines[#lines + 1] = "subjectKeyIdentifier=hash"
  if opts.issuer then lines[#lines + 1] = "authorityKeyIdentifier=keyid" end
  if opts.ca_issuers then lines[#lines + 1] = "authorityInfoAccess=caIssuers;URI:" .. opts.ca_issuers end
  if opts.san and #opts.san > 0 then
    lines[#lines + 1] = "subjectAltName=" .. table.concat(opts.san, ",")
  end
  pki.write(ext, table.concat(lines, "\n") .. "\n")
  local subj = "/CN=" .. (opts.cn or name)
  local md = "-" .. (opts.md or "sha256")
  local days = tostring(opts.days or 365)
  if opts.not_before or opts.not_after then
    -- Explicit dates need `openssl ca` (OpenSSL 3.0's x509 and req cannot).
    local csr = dir .. "/" .. name .. ".csr"
    local db = dir .. "/" .. name .. ".db"
    pki.run(("mkdir -p %s && : > %s/index.txt && echo 01 > %s/serial"):format(sh_quote(db), sh_quote(db), sh_quote(db)))
    pki.write(db .. "/ca.cnf", table.concat({
      "[ca]", "default_ca = tca", "[tca]", "database = " .. db .. "/index.txt",
      "new_certs_dir = " .. db, "serial = " .. db .. "/serial", "default_md = " .. (opts.md or "sha256"),
      "policy = pol", "unique_subject = no", "[pol]", "commonName = supplied", "",
    }, "\n"))
    pki.run(("openssl req -new -key %s -subj %s -out %s"):format(sh_quote(key), sh_quote(subj), sh_quote(csr)))
    local signer = opts.issuer and ("-cert %s -keyfile %s"):format(sh_quote(opts.issuer.cert), sh_quote(opts.issuer.key))
      or ("-selfsign -keyfile %s"):format(sh_quote(key))
    pki.run(("openssl ca -batch -notext -config %s %s -in %s -out %s -startdate %s -enddate %s -extfile %s -md %s"):format(
      sh_quote(db .. "/ca.cnf"), signer, sh_quote(csr), sh_quote(cert),
      opts.not_before or "20200101000000Z", opts.not_after or "20991231000000Z", sh_quote(ext), opts.md or "sha256"))
    return { cert = cert, key = key, name = name }
  end
  if opts.issuer then
    local csr = dir .. "/" .. name .. ".csr"
    pki.run(("openssl req -new -key %s -subj %s -out %s"):format(
      sh_quote(key), sh_quote(subj), sh_quote(csr)))
    pki.run(("openssl x509 -req -in %s -CA %s -CAkey %s -set_serial %d %s -days %s -extfile %s -out %s"):format(
      sh_quote(csr), sh_quote(opts.issuer.cert), sh_quote(opts.issuer.key),
      math.random(1, 2^31 - 1), md, days, sh_quote(ext), sh_quote(cert)))
  else
    local conf = dir .. "/" .. name .. ".cnf"
    pki.write(conf, "[req]\ndistinguished_name=dn\n[dn]\n[v3]\n" .. table.concat(lines, "\n") .. "\n")
    pki.run(("openssl req -x509 -new -key %s -subj %s %s -days %s -set_serial %d -extensions v3 -config %s -out %s"):format(
      sh_quote(key), sh_quote(subj), md, days, math.random(1, 2^31 - 1), sh_quote(conf), sh_quote(cert)))
  end
  return { cert = cert, key = key, name = name }
end

--- A root CA and a leaf for host signed by it, each of key_kind.
function pki.simple(dir, host, key_kind)
  local ca = pki.cert(dir, "ca", { ca = true, key_kind = key_kind, cn = "tlsharden test CA" })
  local leaf = pki.cert(dir, host, {
    issuer = ca, key_kind = key_kind, cn = host, san = { "DNS:" .. host },
  })
  leaf.ca = ca.cert
  return leaf
end

return pki
