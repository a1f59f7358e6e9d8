--- tlsharden survey LIST: many XMPP servers scanned at once, one JSON line
-- per endpoint, resumable.
local survey = require "tlsharden.survey"
local results = require "tlsharden.survey.results"
local progress = require "tlsharden.survey.progress"
local json = require "tlsharden.json"
local errors = require "tlsharden.errors"

return function(cli)
  local usage_error, integer_option = cli.usage_error, cli.integer_option
  local EXIT_OK = cli.EXIT_OK

  local function read_list(path)
    if path == "-" then return io.stdin:read("*a"), "stdin" end
    local f, err = io.open(path, "rb")
    if not f then usage_error("cannot read %s: %s", path, tostring(err)) end
    local text = f:read("*a")
    f:close()
    return text, path
  end

  local function stderr_is_terminal(c)
    if c.err.stream ~= io.stderr then return false end
    local term = os.getenv("TERM")
    if not term or term == "dumb" then return false end
    return os.execute("test -t 2") == true
  end

  cli.command("survey", {
    summary = "scan many XMPP servers at once; one JSON line per endpoint, resumable",
    usage = "survey LIST|- [--out FILE.jsonl [--resume]] [--kind c2s|s2s|both] [--jobs N] [--per-server N]"
      .. " [--connections N] [--order] [--timeout S] [--quiet] [scan options]",
    options = cli.scan_options { out = "value", resume = "flag", jobs = "value",
      ["per-server"] = "value", quiet = "flag", order = "flag" },
    help = [[LIST holds one target a line, as `tlsharden scan` takes it: a domain (its SRV
  records say where its endpoints are), or HOST:PORT with its own --starttls
  c2s|s2s|none, --xmpphost NAME (required for an address) and --kind; "#" starts
  a comment. "-" reads it from stdin. Every endpoint
  found is scanned (--jobs at once, default 32; at most --per-server connections
  to one server address at a time, default 8) and written as one JSON line to
  --out (stdout without it) as soon as it is done; a failure (DNS, refused,
  timeout, not XMPP...) is a line with its status and reason. --resume goes on
  with an interrupted survey: what --out already holds is not scanned again. A
  progress bar (a line per 5 % when stderr is not a terminal) goes to stderr;
  --quiet turns it off. --order also finds each server's order of suites and
  groups (more connections; no count of a report needs it). The other options
  (--kind, --connections per endpoint scan (default 4), --resolver, --cafile,
  --capath, --from, --guide, --starttls-cap, --at, --timeout) are those of
  `tlsharden scan`. Feed the file to `tlsharden report`.]],
    run = function(c)
      if #c.args ~= 1 then usage_error("survey needs exactly one LIST file, or - for stdin (see tlsharden survey --help)") end
      local text, name = read_list(c.args[1])
      local targets, duplicates = cli.input(survey.parse_list, text, name)
      if #targets == 0 then usage_error("%s holds no target", name) end
      local out_path = c.opts.out
      local resume
      if c.opts.resume then
        if not out_path then usage_error("--resume needs --out FILE (the results of the survey to go on with)") end
        local f = io.open(out_path, "rb")
        if f then
          f:close()
          resume = cli.input(results.progress_of, out_path)
        end
      elseif out_path then
        local f = io.open(out_path, "rb")
        if f then
          local size = f:seek("end")
          f:close()
          if size > 0 then
            usage_error("%s exists: --resume goes on with that survey; remove it to start over", out_path)
          end
        end
      end
      local write, file
      if out_path then
        file = results.open_append(out_path, resume and resume.file)
        write = results.writer(file)
      else
        local stream = c.out.stream
        write = function(rec)
          stream:write(json.encode(rec), "\n")
          if stream.flush then stream:flush() end
        end
      end
      if #duplicates > 0 then
        c.err.line(("tlsharden: %s: %d repeated target%s scanned once (line %s)"):format(name, #duplicates,
          #duplicates == 1 and "" or "s", table.concat(duplicates, ", ", 1, math.min(#duplicates, 10))))
      end
      local reporter
      if not c.opts.quiet then
        reporter = progress.reporter(c.err.stream, { terminal = stderr_is_terminal(c) })
      end
      local scan_options = cli.scan_options_of(c)
      scan_options.order = c.opts.order == true
      local kind, connections = scan_options.kind, scan_options.connections
      scan_options.kind, scan_options.connections = nil, nil
      local ok, st = pcall(survey.run, targets, {
        kind = kind,
        jobs = integer_option(c.opts, "jobs"),
        per_server = integer_option(c.opts, "per-server"),
        connections = connections,
        timeout = scan_options.timeout,
        write = write, resume = resume, scan_options = scan_options,
        on_progress = reporter and reporter.update or nil,
      })
      if file then file:close() end
      if not ok then
        if errors.is(st, "interrupted") then
          usage_error("survey interrupted%s", out_path and ("; `--resume --out " .. out_path .. "` goes on with it") or "")
        end
        error(st, 0)
      end
      if reporter then reporter.finish(st) end
      return EXIT_OK
    end,
  })
end
