--- The XMPP stream layer of the scanner (RFC 6120): stream headers, an
-- incremental parser of what a server sends (lua-expat), and STARTTLS
-- negotiation and feature discovery over any socket-like object with
-- send and receive (LuaSocket, LuaSec, or a coroutine scheduler's
-- wrappers). A peer that is no XMPP server, breaks the stream or sends too
-- much is a problem record of the result, never an error. See docs/reference/xmpp.md.
local lxp = require "lxp"
local errors = require "tlsharden.errors"
local problems = require "tlsharden.problems"

local M = {}

local read_features, interpret  -- defined below

local NS_STREAM = "http://etherx.jabber.org/streams"
local NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
local NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
local NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
local NS_DIALBACK_FEATURE = "urn:xmpp:features:dialback"
local NS_COMPRESS_FEATURE = "http://jabber.org/features/compress"
local NS_XML = "http://www.w3.org/XML/1998/namespace"
local NS_DB = "jabber:server:dialback"
M.NS = { stream = NS_STREAM, tls = NS_TLS, sasl = NS_SASL, dialback = NS_DIALBACK_FEATURE,
  compress = NS_COMPRESS_FEATURE, db = NS_DB }

local SEP = "|"
local DEFAULT_LIMITS = { max_depth = 16, max_element = 65536, max_nodes = 1024 }

-- Why an exchange could not go on (an error), and what is wrong with a
-- stream that goes on (a warning): problem records (tlsharden.problems).
local function failure(code, message) return problems.new("error", code, message) end

-- --- stream headers ---------------------------------------------------------

local function xml_escape(s)
  return (s:gsub("[&<>'\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ["'"] = "&apos;", ['"'] = "&quot;" }))
end

local function check_domain(fn, key, v, required)
  if v == nil and not required then return nil end
  if type(v) ~= "string" or v == "" or #v > 1023 or v:find("[%z\1-\32\127]") then
    errors.option(fn, key, "expected a domain name, got %s", errors.quote(v))
  end
  return v
end

local KINDS = { c2s = "jabber:client", s2s = "jabber:server" }

local function check_kind(fn, kind)
  if kind == nil then return "c2s" end
  if not KINDS[kind] then errors.option(fn, "kind", "expected 'c2s' or 's2s', got %s", errors.quote(kind)) end
  return kind
end

--- The opening of a stream (RFC 6120 §4.7) as bytes. opts: kind ("c2s",
-- default, or "s2s", which adds the dialback namespace), to (required),
-- from, lang, version (default "1.0").
function M.stream_header(opts)
  local fn = "scan.xmpp.stream_header"
  opts = errors.options(fn, 1, "opts", opts, { kind = "string", to = true, from = true, lang = "string", version = "string" })
  local kind = check_kind(fn, opts.kind)
  local to = check_domain(fn, "to", opts.to, true)
  local from = check_domain(fn, "from", opts.from, false)
  local version = opts.version or "1.0"
  if not version:find("^%d+%.%d+$") then errors.option(fn, "version", "expected 'N.N', got %s", errors.quote(version)) end
  if opts.lang and not opts.lang:find("^[%w-]+$") then
    errors.option(fn, "lang", "expected a language tag, got %s", errors.quote(opts.lang))
  end
  local parts = { "<?xml version='1.0'?><stream:stream xmlns='", KINDS[kind], "'" }
  if kind == "s2s" then parts[#parts + 1] = " xmlns:db='" .. NS_DB .. "'" end
  parts[#parts + 1] = " xmlns:stream='" .. NS_STREAM .. "' to='" .. xml_escape(to) .. "'"
  if from then parts[#parts + 1] = " from='" .. xml_escape(from) .. "'" end
  if opts.lang then parts[#parts + 1] = " xml:lang='" .. opts.lang .. "'" end
  parts[#parts + 1] = " version='" .. version .. "'>"
  return table.concat(parts)
end

M.STARTTLS = "<starttls xmlns='" .. NS_TLS .. "'/>"

-- --- reading what the server sends ------------------------------------------

local function split(qname)
  local ns, name = qname:match("^(.*)|([^|]*)$")
  if ns then return name, ns end
  return qname, nil
end

local function child_text(node)
  return table.concat(node.text)
end

--- The features a <stream:features/> element offers. Returns { starttls,
-- starttls_required, mechanisms, external, dialback, dialback_errors,
-- compression, bind, sm, elements = { { name, ns, required } },
-- namespaces }.
function read_features(node)
  local f = { starttls = false, starttls_required = false, mechanisms = {}, external = false, dialback = false,
    dialback_errors = false, compression = {}, bind = false, sm = false, elements = {}, namespaces = {} }
  local seen = {}
  for _, child in ipairs(node.children) do
    local required = false
    for _, grand in ipairs(child.children) do
      if grand.name == "required" then required = true end
    end
    f.elements[#f.elements + 1] = { name = child.name, ns = child.ns, required = required }
    if child.ns and not seen[child.ns] then
      seen[child.ns] = true
      f.namespaces[#f.namespaces + 1] = child.ns
    end
    if child.ns == NS_TLS and child.name == "starttls" then
      f.starttls, f.starttls_required = true, required
    elseif child.ns == NS_SASL and child.name == "mechanisms" then
      for _, m in ipairs(child.children) do
        if m.name == "mechanism" then
          local mech = child_text(m):match("^%s*(.-)%s*$")
          f.mechanisms[#f.mechanisms + 1] = mech
          if mech == "EXTERNAL" then f.external = true end
        end
      end
    elseif child.ns == NS_DIALBACK_FEATURE and child.name == "dialback" then
      f.dialback = true
      for _, grand in ipairs(child.children) do
        if grand.name == "errors" then f.dialback_errors = true end
      end
    elseif child.ns == NS_COMPRESS_FEATURE and child.name == "compression" then
      for _, m in ipairs(child.children) do
        if m.name == "method" then f.compression[#f.compression + 1] = child_text(m):match("^%s*(.-)%s*$") end
      end
    elseif child.name == "bind" and child.ns == "urn:ietf:params:xml:ns:xmpp-bind" then
      f.bind = true
    elseif child.name == "sm" and child.ns and child.ns:find("^urn:xmpp:sm:") then
      f.sm = true
    end
  end
  return f
end

local function read_stream_error(node)
  local e = { condition = nil, text = nil }
  for _, child in ipairs(node.children) do
    if child.ns == NS_STREAM_ERRORS then
      if child.name == "text" then e.text = child_text(child)
      elseif not e.condition then e.condition = child.name end
    elseif not e.app then
      e.app = child.name
    end
  end
  e.condition = e.condition or "undefined-condition"
  return e
end

-- What the first bytes of a reply say when they are not XML at all: a
-- failure, nil (looks like XML) or false (too few bytes to tell).
local function sniff(bytes)
  local s = bytes:gsub("^[%s]+", "")
  if s == "" then return nil end
  local b1, b2 = s:byte(1, 2)
  if (b1 == 0x16 or b1 == 0x15) and (b2 == 0x03 or b2 == nil) then
    return failure("TLS", "the peer sent TLS records, not an XMPP stream (a direct TLS port?)")
  end
  if #s < 5 and (("HTTP/"):sub(1, #s) == s or ("SSH-"):sub(1, #s) == s) then return false end
  if s:sub(1, 5) == "HTTP/" then
    return failure("HTTP", "the peer answered with HTTP: " .. errors.quote((s:match("^[^\r\n]*"))))
  end
  if s:sub(1, 4) == "SSH-" then return failure("SSH", "the peer is an SSH server: " .. errors.quote((s:match("^[^\r\n]*")))) end
  if s:find("^220[ -]") or s:find("^%* OK") or s:find("^%+OK") then
    return failure("OTHER_PROTOCOL", "the peer greeted with a mail protocol banner: " .. errors.quote((s:match("^[^\r\n]*"))))
  end
  if b1 ~= 0x3C and b1 ~= 0xEF and b1 ~= 0xFE and b1 ~= 0xFF then  -- "<" or a byte order mark
    return failure("NOT_XML", "the peer sent bytes that are not XML: " .. errors.quote(s:sub(1, 40)))
  end
  return nil
end

local Parser = {}
Parser.__index = Parser

--- An incremental parser of a server's stream. opts: max_depth (16),
-- max_element (65536 bytes of one top-level element, or of the header),
-- max_nodes (1024 elements in one top-level element). p:feed(bytes)
-- returns the list of events completed by these bytes:
--   { event = "header", attrs = { id, from, to, version, lang, xmlns, db } }
--   { event = "features", features = <read_features>, node = ... }
--   { event = "proceed" }, { event = "tls_failure" }
--   { event = "stream_error", condition, text, app }
--   { event = "element", name, ns, node }  (any other top-level element)
--   { event = "close" }                     (</stream:stream>)
--   { event = "failure", problem }          (the stream cannot go on: a problem record)
function M.parser(opts)
  local fn = "scan.xmpp.parser"
  opts = errors.options(fn, 1, "opts", opts, { max_depth = "number", max_element = "number", max_nodes = "number" })
  local p = setmetatable({
    max_depth = errors.number(fn, opts, "max_depth", 2, 1000, DEFAULT_LIMITS.max_depth),
    max_element = errors.number(fn, opts, "max_element", 256, 64 * 1024 * 1024, DEFAULT_LIMITS.max_element),
    max_nodes = errors.number(fn, opts, "max_nodes", 1, 1e6, DEFAULT_LIMITS.max_nodes),
    depth = 0, pending = 0, nodes = 0, events = {}, ns_decls = {}, stack = {}, started = false,
    held = "", received = 0,
  }, Parser)
  local function stop(code, message) error({ stop = failure(code, message) }, 0) end
  local callbacks = {}
  function callbacks.StartNamespaceDecl(_, prefix, uri)
    if p.depth == 0 then p.ns_decls[prefix or ""] = uri end
  end
  function callbacks.StartElement(_, qname, attrs)
    local name, ns = split(qname)
    p.depth = p.depth + 1
    if p.depth == 1 then
      if name ~= "stream" or ns ~= NS_STREAM then
        stop("NOT_XMPP", ("the peer opened <%s%s> instead of an XMPP stream"):format(ns and ("{" .. ns .. "}") or "", name))
      end
      local a = { xmlns = p.ns_decls[""], db = p.ns_decls.db }
      for k, v in pairs(attrs) do
        if type(k) == "string" then
          local an, ans = split(k)
          if ans == NS_XML and an == "lang" then a.lang = v elseif not ans then a[an] = v end
        end
      end
      p.started = true
      p.pending = 0
      p.events[#p.events + 1] = { event = "header", attrs = a }
      return
    end
    if p.depth > p.max_depth then stop("TOO_DEEP", ("an element nests deeper than %d levels"):format(p.max_depth)) end
    p.nodes = p.nodes + 1
    if p.nodes > p.max_nodes then stop("TOO_LARGE", ("an element holds more than %d elements"):format(p.max_nodes)) end
    local node = { name = name, ns = ns, attrs = {}, children = {}, text = {} }
    for k, v in pairs(attrs) do
      if type(k) == "string" then node.attrs[k] = v end
    end
    local parent = p.stack[#p.stack]
    if parent then parent.children[#parent.children + 1] = node end
    p.stack[#p.stack + 1] = node
  end
  function callbacks.EndElement()
    p.depth = p.depth - 1
    if p.depth == 0 then
      p.events[#p.events + 1] = { event = "close" }
      return
    end
    local node = table.remove(p.stack)
    if p.depth == 1 then
      p.pending, p.nodes = 0, 0
      p.events[#p.events + 1] = interpret(node)
    end
  end
  function callbacks.CharacterData(_, text)
    local node = p.stack[#p.stack]
    if node then node.text[#node.text + 1] = text end
  end
  function callbacks.Comment() stop("RESTRICTED_XML", "the peer sent an XML comment (RFC 6120 §11.1)") end
  function callbacks.ProcessingInstruction() stop("RESTRICTED_XML", "the peer sent a processing instruction (RFC 6120 §11.1)") end
  function callbacks.StartDoctypeDecl() stop("RESTRICTED_XML", "the peer sent a document type declaration (RFC 6120 §11.1)") end
  p.lxp = lxp.new(callbacks, SEP)
  return p
end

--- The event for one complete top-level element.
function interpret(node)
  if node.ns == NS_STREAM and node.name == "features" then
    return { event = "features", features = read_features(node), node = node }
  elseif node.ns == NS_STREAM and node.name == "error" then
    local e = read_stream_error(node)
    return { event = "stream_error", condition = e.condition, text = e.text, app = e.app, node = node }
  elseif node.ns == NS_TLS and node.name == "proceed" then
    return { event = "proceed", node = node }
  elseif node.ns == NS_TLS and node.name == "failure" then
    return { event = "tls_failure", node = node }
  end
  return { event = "element", name = node.name, ns = node.ns, node = node }
end

--- Feed bytes; returns the events they complete (see M.parser).
function Parser:feed(bytes)
  local out = {}
  if self.dead then return out end
  self.received = self.received + #bytes
  if not self.sniffed then
    -- hold the first bytes until they say whether this is XML at all
    self.held = self.held .. bytes
    local f = sniff(self.held)
    if #self.held > self.max_element then
      f = failure("TOO_LARGE", ("more than %d bytes of whitespace"):format(self.max_element))
    elseif f == false or (f == nil and not self.held:find("%S")) then
      return out
    end
    self.sniffed = true
    if f then
      self:close()
      out[1] = { event = "failure", problem = f }
      return out
    end
    bytes, self.held = self.held, nil
  end
  self.pending = self.pending + #bytes
  local ok, res, msg, line, col = pcall(self.lxp.parse, self.lxp, bytes)
  local events = self.events
  self.events = {}
  for i, e in ipairs(events) do out[i] = e end
  local stop
  if not ok then
    stop = type(res) == "table" and res.stop or failure("NOT_XML", "the parser failed: " .. tostring(res))
  elseif not res then
    stop = failure("NOT_XML", ("the peer sent malformed XML: %s at line %s, column %s"):format(msg, line, col))
  elseif self.pending > self.max_element then
    stop = failure("TOO_LARGE", ("an element (or the stream header) is longer than %d bytes"):format(self.max_element))
  end
  if stop then
    self:close()
    out[#out + 1] = { event = "failure", problem = stop }
  end
  return out
end

--- Free the expat parser now (it is freed by the collector otherwise);
-- the parser takes no more bytes.
function Parser:close()
  self.dead = true
  if self.lxp then
    pcall(self.lxp.close, self.lxp)
    self.lxp = nil
  end
end

-- --- over a socket -------------------------------------------------------------

local function gettime()
  return require("socket").gettime()
end

-- Wait for at least one byte, then take what else is already there.
local function receive_some(sock, deadline, now)
  local left = deadline - now()
  if left <= 0 then return nil, "timeout" end
  if sock.settimeout then sock:settimeout(left) end
  local data, err, partial = sock:receive(1)
  if not data then
    if partial and #partial > 0 then return partial end
    return nil, err
  end
  if sock.settimeout then sock:settimeout(0) end
  local more, _, rest = sock:receive(4096)
  return data .. (more or rest or "")
end

local function check_stream_opts(fn, opts)
  opts = errors.options(fn, 2, "opts", opts, { kind = "string", to = true, from = true, timeout = "number", lang = "string",
    max_depth = "number", max_element = "number", max_nodes = "number", now = "function", inject = "string" })
  check_kind(fn, opts.kind)
  check_domain(fn, "to", opts.to, true)
  check_domain(fn, "from", opts.from, false)
  errors.number(fn, opts, "timeout", 0.001, 3600, 10)
  return opts
end

-- Read events until want(event) says stop; returns that event or a failure.
local function read_until(sock, parser, state, want)
  while true do
    while #state.queue > 0 do
      local e = table.remove(state.queue, 1)
      if e.event == "element" and e.node and e.node.attrs.id then state.ids[#state.ids + 1] = e.node.attrs.id end
      if e.event == "failure" or want(e) then return e end
    end
    local data, err = receive_some(sock, state.deadline, state.now)
    if not data then
      if err == "timeout" then
        return { event = "failure", problem = failure("TIMEOUT", ("no answer within %gs"):format(state.timeout)) }
      end
      return { event = "failure", problem = failure("CLOSED", ("the connection ended (%s)"):format(tostring(err))) }
    end
    state.received = state.received .. (#state.received < 256 and data:sub(1, 256 - #state.received) or "")
    for _, e in ipairs(parser:feed(data)) do state.queue[#state.queue + 1] = e end
  end
end

local function header_problems(result, opts, kind)
  local h = result.header
  local function add(code, message) problems.add(result.problems, "warning", code, message) end
  if not h.id or h.id == "" then add("NO_STREAM_ID", "the stream header has no id (RFC 6120 §4.7.3)") end
  local major = tonumber(h.version and h.version:match("^(%d+)%.%d+$"))
  if not major or major < 1 then
    result.failure = failure("OLD_VERSION",
      ("the stream header has version %s, not 1.0: a server from before RFC 3920, without stream features")
        :format(errors.quote(h.version)))
  end
  if h.xmlns ~= KINDS[kind] then
    add("WRONG_NAMESPACE", ("the stream's namespace is %s, expected '%s'"):format(errors.quote(h.xmlns), KINDS[kind]))
  end
  if h.from and h.from:lower() ~= opts.to:lower() then
    add("FROM_MISMATCH", ("the stream is from %s, not %s"):format(errors.quote(h.from), errors.quote(opts.to)))
  end
end

-- Open a stream and read up to the features. Returns result, parser, state.
local function open_stream(fn, sock, opts)
  local kind = opts.kind or "c2s"
  local now = opts.now or gettime
  local timeout = opts.timeout or 10
  local result = { kind = kind, to = opts.to, problems = problems.list() }
  local parser = M.parser { max_depth = opts.max_depth, max_element = opts.max_element, max_nodes = opts.max_nodes }
  local state = { queue = {}, deadline = now() + timeout, now = now, timeout = timeout, received = "", ids = {} }
  result.head, result.ids = "", state.ids
  -- The newline after the header is whitespace to XMPP, and ends the
  -- line a line-based server (HTTP, SMTP) waits for before it answers.
  local ok, err = sock:send(M.stream_header { kind = kind, to = opts.to, from = opts.from, lang = opts.lang } .. "\n")
  if not ok then
    result.failure = failure("CLOSED", ("sending the stream header failed (%s)"):format(tostring(err)))
    result.head = state.received
    return result, parser, state
  end
  local e = read_until(sock, parser, state, function(ev) return ev.event == "header" end)
  if e.event == "failure" then
    result.failure = e.problem
    if e.problem.code == "CLOSED" or e.problem.code == "TIMEOUT" then
      e.problem.message = e.problem.message .. (state.received == "" and " before any reply"
        or (" after %s"):format(errors.quote(state.received)))
    end
    result.head = state.received
    return result, parser, state
  end
  result.header = e.attrs
  header_problems(result, opts, kind)
  if result.failure then
    result.head = state.received
    return result, parser, state
  end
  e = read_until(sock, parser, state, function(ev)
    return ev.event == "features" or ev.event == "stream_error" or ev.event == "close"
  end)
  if e.event == "features" then
    result.features = e.features
  elseif e.event == "stream_error" then
    result.stream_error = { condition = e.condition, text = e.text, app = e.app }
    result.failure = failure("STREAM_ERROR", ("the server closed the stream with <%s/>%s"):format(e.condition,
      e.text and (": " .. e.text) or ""))
  elseif e.event == "close" then
    result.failure = failure("CLOSED", "the server closed the stream before its features")
  else
    result.failure = e.problem
  end
  result.received = parser.received
  result.head = state.received
  return result, parser, state
end

--- Open a stream on a plain connection, read the features and ask for
-- STARTTLS when offered. opts: kind ("c2s"|"s2s"), to (required), from,
-- lang, timeout (seconds for the whole exchange, default 10), inject
-- (bytes sent in the same write as <starttls/>), max_depth,
-- max_element, max_nodes, now (a clock). Returns { kind, to, header,
-- features, starttls, starttls_required, proceed, tls_failure,
-- stream_error, failure, problems, received }; after proceed = true the
-- caller starts TLS on the same socket.
function M.negotiate_starttls(sock, opts)
  local fn = "scan.xmpp.negotiate_starttls"
  if sock == nil or (type(sock) ~= "table" and type(sock) ~= "userdata") then
    errors.argument(fn, 1, "sock", "expected a socket with send and receive, got %s", errors.quote(sock))
  end
  opts = check_stream_opts(fn, opts)
  local result, parser, state = open_stream(fn, sock, opts)
  result.starttls, result.starttls_required, result.proceed, result.tls_failure = false, false, false, false
  local function done()
    parser:close()
    return result
  end
  if not result.features then return done() end
  result.starttls = result.features.starttls
  result.starttls_required = result.features.starttls_required
  if not result.starttls then
    problems.add(result.problems, "error", "NO_STARTTLS", "the server does not offer STARTTLS: the stream stays unencrypted")
    return done()
  end
  -- inject: bytes sent in the same write as <starttls/> (the STARTTLS
  -- command injection check); a sound server drops them
  local ok, err = sock:send(M.STARTTLS .. (opts.inject or ""))
  if not ok then
    result.failure = failure("CLOSED", ("sending <starttls/> failed (%s)"):format(tostring(err)))
    return done()
  end
  local e = read_until(sock, parser, state, function(ev)
    return ev.event == "proceed" or ev.event == "tls_failure" or ev.event == "stream_error" or ev.event == "close"
  end)
  if e.event == "proceed" then
    result.proceed = true
  elseif e.event == "tls_failure" then
    result.tls_failure = true
    result.failure = failure("TLS_FAILURE", "the server answered <starttls/> with <failure/>")
  elseif e.event == "stream_error" then
    result.stream_error = { condition = e.condition, text = e.text, app = e.app }
    result.failure = failure("STREAM_ERROR", ("the server closed the stream with <%s/>"):format(e.condition))
  elseif e.event == "close" then
    result.failure = failure("CLOSED", "the server closed the stream instead of answering <starttls/>")
  else
    result.failure = e.problem
  end
  result.received = parser.received
  result.head = state.received
  return done()
end

--- Open a stream on an established (TLS) connection and read its
-- features: SASL mechanisms (EXTERNAL), dialback, and the rest. opts as
-- for negotiate_starttls. Returns { kind, to, header, features,
-- stream_error, failure, problems, received }.
function M.features(conn, opts)
  local fn = "scan.xmpp.features"
  if conn == nil or (type(conn) ~= "table" and type(conn) ~= "userdata") then
    errors.argument(fn, 1, "conn", "expected a connection with send and receive, got %s", errors.quote(conn))
  end
  opts = check_stream_opts(fn, opts)
  local result, parser = open_stream(fn, conn, opts)
  parser:close()
  return result
end

return M
