-- mod_tlsharden_observatory: an XMPP observatory served by Prosody. A page
-- with a form, a page per scan, a directory of the domains scanned with
-- their badges and survey report, and a JSON API, under /observatory on
-- Prosody's HTTP server; scans run inside Prosody's own event loop
-- (tlsharden's scheduler on net.server's watchfd and timers) and never
-- block it; results live in Prosody's storage (file or SQL). This file
-- only hooks into Prosody: the work is tlsharden/observatory/service.lua,
-- the HTTP answers tlsharden/observatory/web.lua. See
-- docs/guide/observatory.md.

local net = require "tlsharden.scan.net"
local policy_mod = require "tlsharden.observatory.policy"
local service_mod = require "tlsharden.observatory.service"
local web = require "tlsharden.observatory.web"

local prosody_module = require "tlsharden.prosody.modules"

local server = prosody_module "net.server"
local timer = prosody_module "util.timer"
local id = prosody_module "util.id"

module:depends("http")

local PREFIX = "tlsharden_observatory_"

-- every limit, read as a number option (service.DEFAULTS names them)
local limits = {}
for k, default in pairs(service_mod.DEFAULTS) do
  limits[k] = module:get_option_number(PREFIX .. k, default)
end

local policy = policy_mod.new {
  fn = "mod_tlsharden_observatory",
  allow = module:get_option_array(PREFIX .. "allow", {}),
  ports = module:get_option(PREFIX .. "ports", policy_mod.PORTS),
}

-- options every scan gets, as tlsharden scan takes them
local scan_options = {}
for _, k in ipairs { "resolver", "cafile", "capath", "trust_anchor" } do
  scan_options[k] = module:get_option_string(PREFIX .. k, nil)
end
scan_options.dnssec = module:get_option_boolean(PREFIX .. "dnssec", nil)

local sched = net.scheduler {
  loop = { watchfd = server.watchfd, add_task = timer.add_task, stop_task = timer.stop },
  per_server = limits.scan_connections + 1,
  max_connections = limits.connections,
  timeout = limits.timeout,
  on_error = function(task) module:log("error", "observatory task failed: %s", tostring(task.error)) end,
}

-- Prosody collects garbage eagerly (a new cycle when the heap has grown
-- by 5 %, util/startup.lua's default), which makes every byte a scan
-- allocates cost a pass over the server's whole heap: while scans run,
-- the collector waits until the heap has doubled (Lua's own default), and
-- Prosody's setting comes back when the last scan ends. 0 leaves the
-- collector alone; so does a generational one.
local gc_pause = module:get_option_number(PREFIX .. "gc_pause", 200)
local gc_config = module:get_option("gc")
local gc_saved
local function on_busy(busy)
  if gc_pause <= 0 or (type(gc_config) == "table" and gc_config.mode == "generational") then return end
  if busy and not gc_saved then
    local ok, previous = pcall(collectgarbage, "setpause", gc_pause)
    if ok then gc_saved = previous end
  elseif not busy and gc_saved then
    pcall(collectgarbage, "setpause", gc_saved)
    gc_saved = nil
  end
end

local service = service_mod.new {
  stores = { scans = module:open_store(PREFIX:sub(1, -2) .. "_scans"), index = module:open_store(PREFIX:sub(1, -2)) },
  scheduler = sched, policy = policy, scan_options = scan_options, limits = limits,
  new_id = id.medium, log = function(...) module:log(...) end, on_busy = on_busy,
}

-- the path the pages live under, as mod_http gives it (http_paths may move it)
local function base_path()
  local url = module:http_url("observatory", "/observatory")
  local path = url:match("^%a+://[^/]+(/.*)$") or "/observatory"
  return (path:gsub("/$", ""))
end

local function header_name(k) return (k:lower():gsub("%-", "_")) end

local function handle(event, path)
  local request, response = event.request, event.response
  local req = { method = request.method, path = "/" .. (path or ""), query = request.url and request.url.query,
    body = request.body, ip = request.ip or (request.conn and request.conn:ip()) }
  local base = base_path()
  local ok, res = pcall(web.handle, service, req, base)
  if not ok then
    module:log("error", "observatory: %s %s: %s", req.method, req.path, tostring(res))
    res = web.handle_error(500, base, req.path)
  end
  response.status_code = res.status
  for k, v in pairs(res.headers) do response.headers[header_name(k)] = v end
  return res.body
end

module:provides("http", {
  name = "observatory",
  default_path = "/observatory",
  route = {
    ["GET /*"] = handle,
    ["POST /*"] = handle,
  },
})

-- scheduled rescans of the directory
local rescan_every = limits.rescan_interval > 0 and math.max(1, math.min(limits.rescan_interval / 4, 3600)) or nil
if rescan_every then
  module:add_timer(rescan_every, function()
    local ok, err = pcall(service.rescan_due, service)
    if not ok then module:log("error", "observatory rescans: %s", tostring(err)) end
    return rescan_every
  end)
end

module:log("info", "observatory at %s: %d scans at once, %d queued at most, %d connections, rescans %s",
  base_path(), limits.concurrent, limits.queue, limits.connections,
  rescan_every and ("every " .. limits.rescan_interval .. " s") or "off")

function module.unload()
  -- scans in flight stop here; the next load marks them cut off
  sched:stop()
  on_busy(false)
end
