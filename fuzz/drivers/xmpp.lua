-- Fuzz target: the XMPP stream parser (tlsharden.xmpp over lua-expat).
-- The input is fed as it is and behind a real stream header, in chunks
-- whose size the first byte picks; every outcome must be a list of events,
-- the last of them a failure (a problem record) when the stream cannot go on, and the parser
-- must stay within its limits.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local xmpp = require "tlsharden.scan.xmpp"
local problems = require "tlsharden.problems"

local HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
  .. " xmlns:stream='http://etherx.jabber.org/streams' id='f' from='example.org' version='1.0'>"
local KNOWN = { header = true, features = true, proceed = true, tls_failure = true, stream_error = true,
  element = true, close = true, failure = true }

local function run(bytes, step)
  local p = xmpp.parser { max_depth = 8, max_element = 4096, max_nodes = 64 }
  for i = 1, #bytes, step do
    for _, e in ipairs(p:feed(bytes:sub(i, i + step - 1))) do
      assert(KNOWN[e.event], "unknown event")
      if e.event == "failure" then assert(p.dead and problems.check(e.problem)) end
      if e.event == "features" then assert(type(e.features.mechanisms) == "table") end
    end
    assert(p.depth <= 9 and p.nodes <= 65, "a limit was passed")
    if p.dead then break end
  end
  p:close()
end

return function(data)
  local step = (data:byte(1) or 0) % 64 + 1
  run(data, step)
  run(HEADER .. data, step)
end
