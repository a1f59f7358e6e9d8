-- mod_tlsharden_observatory as served: a real Prosody (0.12 and 13) with
-- the module loaded (loopback allowed, any port), its pages opened in
-- headless Chromium at a phone's and a desktop's size. The home page
-- fetches nothing from elsewhere and fits the phone; the form, driven as
-- a person would (typing, a radio button, the details opened, a select
-- moved with the keyboard, the button clicked; the pages run no script),
-- lands on the scan's page through a 303, which reloads itself until it
-- shows the grade and the endpoint, as the JSON API says them; the
-- directory sorts by its column heads; the badge and the report open
-- without error; a malformed target gets a clear error with status 400
-- and stores nothing. Screenshots go to build/observatory/served-*.png.
-- Tagged #truth: real Prosody and a real browser; the release suite runs it.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local prosody = require "spec.helpers.prosody"
local browser = require "spec.helpers.browser"
local sh = require "spec.helpers.sh"

local repo = prosody.root
-- Prosody loads the checkout's modules and core (the normal build).
local env = ("LUA_PATH_5_4='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH_5_4='%s/build/?.so;;'"):format(repo, repo, repo)
local OUT = repo .. "/build/observatory"

local DESKTOP = { width = 1280, height = 900 }
local PHONE = { width = 390, height = 844, scale = 2, mobile = true }
local VIEWPORTS = { { "phone", PHONE }, { "desktop", DESKTOP } }
-- a second virtual host, so that the directory has two domains to order
local OTHER = "beta.example"

local function js(s) return cjson.encode(s) end

-- Poll fn (errors count as "not yet": a page in the middle of loading)
-- every half second for at most timeout seconds; its first truthy value,
-- or nil and the last thing it said.
local function poll(fn, timeout)
  local deadline, last = socket.gettime() + (timeout or 30), nil
  repeat
    local ok, v = pcall(fn)
    if ok and v then return v end
    last = v
    socket.sleep(0.5)
  until socket.gettime() > deadline
  return nil, last
end

-- The DevTools events of one kind since the page was opened.
local function events(page, method)
  page:evaluate("1") -- take what has arrived
  local out = {}
  for _, e in ipairs(page.events) do
    if e.method == method then out[#out + 1] = e.params end
  end
  return out
end

-- A key pressed and released (DevTools' Input domain).
local function key(page, name, code)
  for _, kind in ipairs { "rawKeyDown", "keyUp" } do
    page:call("Input.dispatchKeyEvent", { type = kind, key = name, code = name, windowsVirtualKeyCode = code,
      nativeVirtualKeyCode = code })
  end
end

describe("#truth observatory served", function()
  local ok_browser, why = browser.available()
  if not ok_browser then
    pending("chromium cannot run here: " .. why)
    return
  end

  prosody.each_version(describe, pending, "by Prosody", function(v)
    local server, b, base, origin
    local scanned -- the scan asked for through the form: { id, url }

    -- A request to the observatory with LuaSocket: status, body, headers.
    local function request(method, path, body, ctype)
      local out = {}
      local headers = { host = "localhost" }
      if body then
        headers["content-length"] = #body
        headers["content-type"] = ctype or "application/json"
      end
      local _, code, h = http.request { url = ("http://127.0.0.1:%d/observatory%s"):format(server.ports.http, path),
        method = method, headers = headers, source = body and ltn12.source.string(body),
        sink = ltn12.sink.table(out), redirect = false }
      return code, table.concat(out), h
    end

    local function api_scan(id)
      local code, body = request("GET", "/api/scans/" .. id)
      assert.equal(200, code, body)
      return cjson.decode(body)
    end

    local function wait_done(id)
      local rec, last = poll(function()
        local r = api_scan(id)
        return r.state ~= "queued" and r.state ~= "running" and r
      end, 60)
      assert(rec, "the scan " .. id .. " did not finish within 60 s: " .. tostring(last))
      return rec
    end

    local function directory()
      local code, body = request("GET", "/api/directory")
      assert.equal(200, code, body)
      return cjson.decode(body), body
    end

    local function shot(page, name, vp)
      return page:screenshot(("%s/served-%s-%s-%s.png"):format(OUT, name, vp, v.name), true)
    end

    -- Checks every page of the observatory must pass: no console error,
    -- nothing fetched but from the observatory, no wider than the viewport.
    -- status: the HTTP status the page itself is served with (Chromium logs
    -- an error status of the document as a failed load: that one is expected).
    local function assert_clean_page(page, vp, what, status)
      local errors = {}
      for _, e in ipairs(page:errors()) do
        if not (status and e == ("log: Failed to load resource: the server responded with a status of %d (%s) %s")
          :format(status, status == 400 and "Bad Request" or "?", page:evaluate("location.href"))) then
          errors[#errors + 1] = e
        end
      end
      assert.same({}, errors, what)
      local foreign = page:evaluate(([[performance.getEntriesByType('resource')
        .map(function (e) { return e.name; })
        .filter(function (u) { return new URL(u).origin !== %s; })]]):format(js(origin)))
      assert.same({}, foreign, what)
      for _, r in ipairs(events(page, "Network.requestWillBeSent")) do
        local url = r.request.url
        assert.is_true(url:sub(1, #base + 1) == base .. "/" or url:sub(1, 5) == "data:", what .. ": " .. url)
      end
      assert.equal(0, page:evaluate("document.scripts.length"), what)
      assert.is_true(page:evaluate("document.documentElement.scrollWidth") <= vp.width, what)
    end

    -- b:open, with the Network domain on (setup enables it for the
    -- browser's session: every request of the navigation is seen)
    local function open(url, vp) return b:open(url, vp) end

    setup(function()
      sh.run("mkdir -p " .. sh.quote(OUT))
      server = prosody.start { version = v.name, http = true, hosts = { "localhost", OTHER },
        plugin_paths = { repo .. "/lua" }, env = env, modules = { "tlsharden_observatory" },
        global = { tlsharden_observatory_allow = { "127.0.0.0/8" }, tlsharden_observatory_ports = "any",
          tlsharden_observatory_client_limit = 100, http_default_host = "localhost" } }
      base = ("http://localhost:%d/observatory"):format(server.ports.http)
      origin = ("http://localhost:%d"):format(server.ports.http)
      local err
      b, err = browser.start { width = DESKTOP.width, height = DESKTOP.height }
      if not b then
        server.stop()
        server = nil
        error(err, 0)
      end
      b:open("about:blank"):call("Network.enable")
    end)

    teardown(function()
      if b then pcall(b.stop, b) end
      if server then server.stop() end
    end)

    it("serves the home page at a phone's and a desktop's size: no error, nothing from elsewhere, no wider", function()
      for _, vp in ipairs(VIEWPORTS) do
        local page = open(base .. "/", vp[2])
        assert.equal(base .. "/", page:evaluate("location.href"))
        assert.equal("XMPP TLS observatory", page:evaluate("document.querySelector('h1').textContent"))
        assert.equal(1, page:evaluate("document.querySelectorAll('form.scan').length"))
        assert_clean_page(page, vp[2], "home " .. vp[1])
        assert.is_true(#events(page, "Network.requestWillBeSent") >= 1)
        shot(page, "home", vp[1])
      end
    end)

    it("scans through the form: a 303 to the scan's page, which reloads itself until it shows the result", function()
      local page = open(base .. "/", PHONE)
      local target = "127.0.0.1:" .. server.ports.c2s
      page:click("#target")
      page:type("#target", target)
      page:click("input[name=kind][value=c2s]")
      assert.is_false(page:evaluate("document.querySelector('details').open"))
      page:click("details summary")
      assert.is_true(page:evaluate("document.querySelector('details').open"))
      -- the select moved with the keyboard: auto -> c2s STARTTLS
      page:click("#starttls")
      page:evaluate("document.querySelector('#starttls').focus()")
      key(page, "ArrowDown", 40)
      poll(function() return page:evaluate("document.querySelector('#starttls').value") == "c2s" end, 5)
      if page:evaluate("document.querySelector('#starttls').value") ~= "c2s" then
        -- a headless select can open as a popup: close it with Enter
        key(page, "Enter", 13)
      end
      assert.equal("c2s", page:evaluate("document.querySelector('#starttls').value"))
      page:click("#xmpphost")
      page:type("#xmpphost", "localhost")
      assert.same({ target, "c2s", "c2s", "localhost" }, page:evaluate([[(function () {
        var f = document.querySelector('form.scan');
        return [f.target.value, f.kind.value, f.starttls.value, f.xmpphost.value]; })()]]))
      page:click("form.scan button[type=submit]")

      -- the browser lands on the scan's page
      local pattern = "^" .. base:gsub("%p", "%%%0") .. "/scan/([%w_%-]+)$"
      local waiting -- whether the page first seen there was the waiting one
      local url = poll(function()
        local href = page:evaluate("location.href")
        if not href:match(pattern) or page:evaluate("document.readyState") == "loading" then return nil end
        waiting = page:evaluate("document.querySelectorAll('meta[http-equiv=refresh]').length") == 1
        return href
      end, 30)
      assert(url, "the form did not lead to a scan's page")
      local id = url:match(pattern)
      scanned = { id = id, url = url }
      -- through a 303 answering the form's POST
      local redirect
      for _, r in ipairs(events(page, "Network.requestWillBeSent")) do
        if r.redirectResponse and r.request.url == url then redirect = r end
      end
      assert(redirect, "no redirect to " .. url)
      assert.equal(303, redirect.redirectResponse.status)
      assert.equal(base .. "/scan", redirect.redirectResponse.url)
      assert.equal("GET", redirect.request.method)

      -- the page reloads itself until the grade shows
      local text, last = poll(function()
        assert.equal(url, page:evaluate("location.href"))
        -- (false, not null: cjson's null is a true value in Lua)
        return page:evaluate("document.querySelector('.grade.big') ? document.body.innerText : false")
      end, 30)
      assert(text, "the scan's page showed no grade within 30 s: " .. tostring(last))
      local rec = api_scan(id)
      assert.equal("done", rec.state)
      assert.equal("localhost", rec.domain)
      assert.is_string(rec.grade)
      -- it reloaded itself (a meta refresh, not a script) while the scan ran, and no longer does
      assert.equal(0, page:evaluate("document.querySelectorAll('meta[http-equiv=refresh]').length"))
      local loads = 0
      for _, r in ipairs(events(page, "Network.requestWillBeSent")) do
        if r.request.url == url and r.type == "Document" then loads = loads + 1 end
      end
      -- the waiting page had no grade and this one has: it was loaded again
      assert.is_true(loads >= (waiting and 2 or 1), ("%d loads, waiting first: %s"):format(loads, tostring(waiting)))

      -- what the page says is what the API says
      assert.equal(rec.grade, page:evaluate("document.querySelector('.grade.big').textContent"))
      assert.truthy(text:find("Overall grade " .. rec.grade, 1, true))
      local n = #rec.result.endpoints
      assert.is_true(n >= 1)
      assert.equal(n, page:evaluate("document.querySelectorAll('table.endpoints tbody tr').length"))
      assert.equal(n, page:evaluate("document.querySelectorAll('section.endpoint').length"))
      local rows = page:evaluate([[Array.prototype.map.call(document.querySelectorAll('table.endpoints tbody tr'),
        function (tr) { return [tr.cells[3].textContent, tr.cells[4].textContent, tr.cells[5].textContent]; })]])
      for i, e in ipairs(rec.result.endpoints) do
        assert.same({ e.address, ("%d"):format(e.port), "STARTTLS" }, rows[i])
        assert.equal("127.0.0.1", e.address)
        assert.equal(server.ports.c2s, e.port)
      end
      assert.equal(id, page:evaluate([[(function () {
        var dt = Array.prototype.filter.call(document.querySelectorAll('dt'),
          function (d) { return d.textContent === 'scan id'; })[0];
        return dt && dt.nextElementSibling.textContent; })()]]))
      assert_clean_page(page, PHONE, "scan phone")
      shot(page, "scan", "phone")
      page = open(url, DESKTOP)
      assert.equal(rec.grade, page:evaluate("document.querySelector('.grade.big').textContent"))
      assert_clean_page(page, DESKTOP, "scan desktop")
      shot(page, "scan", "desktop")
    end)

    it("orders the directory as its column heads ask", function()
      assert(scanned, "needs the scan of the form")
      -- a second domain, asked for through the JSON API
      local code, body = request("POST", "/api/scans", js { target = "127.0.0.1:" .. server.ports.c2s, kind = "c2s",
        starttls = "c2s", xmpphost = OTHER })
      assert.equal(202, code, body)
      assert.equal("done", wait_done(cjson.decode(body).id).state)
      local list = directory()
      assert.equal(2, #list)

      for _, vp in ipairs(VIEWPORTS) do
        local page = open(base .. "/directory", vp[2])
        local function rows()
          return page:evaluate([[Array.prototype.map.call(document.querySelectorAll('tr[data-domain]'),
            function (tr) { return tr.getAttribute('data-domain'); })]])
        end
        local function sorted_by()
          return page:evaluate([[Array.prototype.map.call(document.querySelectorAll('th[aria-sort]'),
            function (th) { return th.textContent + ':' + th.getAttribute('aria-sort'); }).join(' ')]])
        end
        -- by domain, ascending, unless asked otherwise
        assert.same({ OTHER, "localhost" }, rows())
        assert.truthy(sorted_by():find("domain:ascending", 1, true))
        assert_clean_page(page, vp[2], "directory " .. vp[1])
        shot(page, "directory", vp[1])
        -- the domain's head again: the other way
        page:click("th[aria-sort=ascending] a")
        local href = poll(function()
          local h = page:evaluate("location.href")
          return h:find("sort=domain&order=desc", 1, true) and page:evaluate("document.readyState") == "complete" and h
        end, 15)
        assert.equal(base .. "/directory?sort=domain&order=desc", href)
        assert.same({ "localhost", OTHER }, rows())
        assert.truthy(sorted_by():find("domain:descending", 1, true))
        -- by date, newest first: the second scan
        page:click("th:nth-child(5) a")
        href = poll(function()
          local h = page:evaluate("location.href")
          return h:find("sort=date", 1, true) and page:evaluate("document.readyState") == "complete" and h
        end, 15)
        assert.equal(base .. "/directory?sort=date&order=desc", href)
        assert.same({ OTHER, "localhost" }, rows())
        assert.truthy(sorted_by():find("scanned:descending", 1, true))
        -- as the API orders them
        local _, api_body = request("GET", "/api/directory?sort=date&order=desc")
        local api = cjson.decode(api_body)
        assert.same({ api[1].domain, api[2].domain }, rows())
        assert_clean_page(page, vp[2], "directory by date " .. vp[1])
      end
    end)

    it("opens the badge and the report without error", function()
      assert(scanned, "needs the scan of the form")
      local rec = api_scan(scanned.id)
      for _, vp in ipairs(VIEWPORTS) do
        local page = open(base .. "/badge/localhost.svg", vp[2])
        -- an SVG document has no <link rel=icon>: Chromium asks the server's
        -- root for /favicon.ico, outside the observatory, and Prosody has none.
        -- Wait (bounded) for that request to end, then allow that one error.
        local icon = origin .. "/favicon.ico"
        poll(function()
          for _, kind in ipairs { "Network.loadingFinished", "Network.loadingFailed" } do
            for _, e in ipairs(events(page, kind)) do
              for _, r in ipairs(events(page, "Network.requestWillBeSent")) do
                if r.requestId == e.requestId and r.request.url == icon then return true end
              end
            end
          end
        end, 3)
        local errors = {}
        for _, e in ipairs(page:errors()) do
          if e ~= "log: Failed to load resource: the server responded with a status of 404 (Not Found) " .. icon then
            errors[#errors + 1] = e
          end
        end
        assert.same({}, errors, "badge " .. vp[1])
        for _, r in ipairs(events(page, "Network.requestWillBeSent")) do
          assert.truthy(r.request.url == base .. "/badge/localhost.svg" or r.request.url == icon, r.request.url)
        end
        assert.equal("svg", page:evaluate("document.documentElement.nodeName"))
        assert.equal("XMPP TLS grade of localhost: " .. rec.grade,
          page:evaluate("document.querySelector('title').textContent"))
        page = open(base .. "/report", vp[2])
        assert_clean_page(page, vp[2], "report " .. vp[1])
        local text = page:evaluate("document.body.innerText")
        assert.truthy(text:find("127.0.0.1:" .. server.ports.c2s, 1, true))
        shot(page, "report", vp[1])
      end
    end)

    it("shows a clear error for a malformed target, with status 400, and stores nothing", function()
      local _, before = directory()
      for _, vp in ipairs(VIEWPORTS) do
        local page = open(base .. "/", vp[2])
        page:click("#target")
        page:type("#target", "not a domain!")
        page:click("form.scan button[type=submit]")
        local shown = poll(function()
          return page:evaluate("document.readyState") == "complete"
            and page:evaluate("location.href") == base .. "/scan"
            and page:evaluate("(document.querySelector('#form-error') || {}).textContent")
        end, 15)
        assert(shown, "no error shown")
        assert.truthy(shown:find("target", 1, true), shown)
        -- the form is there again, with what was typed, marked invalid
        assert.equal("not a domain!", page:evaluate("document.querySelector('#target').value"))
        assert.equal("true", page:evaluate("document.querySelector('#target').getAttribute('aria-invalid')"))
        -- the browser got a 400 for its POST
        local status
        for _, r in ipairs(events(page, "Network.responseReceived")) do
          if r.response.url == base .. "/scan" and r.type == "Document" then status = r.response.status end
        end
        assert.equal(400, status)
        assert_clean_page(page, vp[2], "error " .. vp[1], 400)
        shot(page, "error", vp[1])
      end
      -- the same through LuaSocket, the form and the API
      local code, body = request("POST", "/scan", "target=not+a+domain%21&kind=c2s",
        "application/x-www-form-urlencoded")
      assert.equal(400, code)
      assert.truthy(body:find('id="form-error"', 1, true))
      local api_code, api_body = request("POST", "/api/scans", js { target = "not a domain!" })
      assert.equal(400, api_code)
      assert.is_string(cjson.decode(api_body).error)
      local _, after = directory()
      assert.equal(before, after)
      local _, status_body = request("GET", "/api/status")
      local st = cjson.decode(status_body)
      assert.same({ 0, 0 }, { st.queued, st.running })
    end)

    it("logged no error or warning of the observatory while serving all that", function()
      local bad = {}
      for line in server.log():gmatch("[^\n]+") do
        if line:find("observatory", 1, true) and (line:find("\terror\t", 1, true) or line:find("\twarn\t", 1, true)) then
          bad[#bad + 1] = line
        end
      end
      assert.same({}, bad)
    end)
  end)
end)
