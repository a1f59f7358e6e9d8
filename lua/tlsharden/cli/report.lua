--- tlsharden report FILE.jsonl [OLD NEW]: the counts of a survey, its HTML
-- page and Markdown summary, or what changed between two surveys.
local report = require "tlsharden.report"
local markdown = require "tlsharden.report.markdown"
local html = require "tlsharden.report.html"
local json = require "tlsharden.json"

return function(cli)
  local usage_error = cli.usage_error
  local EXIT_OK, EXIT_FINDING = cli.EXIT_OK, cli.EXIT_FINDING

  local function write_file(path, text)
    local f, err = io.open(path, "wb")
    if not f then usage_error("cannot write %s: %s", path, tostring(err)) end
    f:write(text)
    f:close()
  end

  local function load(path)
    local f = io.open(path, "rb")
    if not f then usage_error("cannot read %s", path) end
    f:close()
    return cli.input(report.build, path)
  end

  local function print_counts(o, rep)
    local status = report.find(rep.counts, "status")
    o.line(o.paint("bold", ("%s: %d endpoints of %d servers"):format(rep.source, status.base.all, rep.targets)))
    for _, t in ipairs(rep.counts) do
      o.line()
      o.line(o.paint("bold", t.title))
      local rows = { { "", ("all (%d)"):format(t.base.all), ("c2s (%d)"):format(t.base.c2s),
        ("s2s (%d)"):format(t.base.s2s) } }
      for _, r in ipairs(t.rows) do
        local function c(kind) return ("%d %s"):format(r[kind], report.percent(r[kind], t.base[kind])) end
        rows[#rows + 1] = { "  " .. r.label, c("all"), c("c2s"), c("s2s") }
      end
      o.columns(rows)
    end
  end

  local function warn_bad(c, rep)
    if #rep.bad > 0 then
      c.err.line(("tlsharden: %s: %d lines are not results (first: line %d: %s)"):format(rep.source, #rep.bad,
        rep.bad[1].line, rep.bad[1].reason))
    end
    if rep.tail ~= "" then
      c.err.line(("tlsharden: %s: the last line is cut short (a survey stopped while writing it)"):format(rep.source))
    end
  end

  local function json_counts(rep)
    local tables = json.list()
    for i, t in ipairs(rep.counts) do
      local rows = json.list()
      for j, r in ipairs(t.rows) do rows[j] = { key = r.key, label = r.label, all = r.all, c2s = r.c2s, s2s = r.s2s } end
      tables[i] = { id = t.id, title = t.title, base = t.base, rows = rows }
    end
    return { source = rep.source, endpoints = #rep.rows, servers = rep.targets, counts = tables,
      bad_lines = #rep.bad, repeated = rep.repeated }
  end

  cli.command("report", {
    summary = "the counts of a survey, an HTML page and a Markdown summary; or two surveys compared",
    usage = "report FILE.jsonl [OLD.jsonl NEW.jsonl] [--html OUT.html] [--markdown OUT.md] [--title T]",
    options = { html = "value", markdown = "value", title = "value" },
    help = [[FILE.jsonl is what `tlsharden survey --out` wrote. Prints the counts (grades with and
  without certificate problems, why certificates fail, protocols, keys, weak, EXPORT
  and forward-secret suites, STARTTLS, SASL PLAIN before TLS, DANE); --html writes
  one self-contained page (charts, a sortable table of servers, each server's
  details), --markdown a summary to paste into a mailing list ("-": stdout).
  With two files, shows which servers got better or worse from the first to the
  second (exit 1 when any got worse); --html and --markdown then report the second
  with the changes.]],
    run = function(c)
      if #c.args < 1 or #c.args > 2 then
        usage_error("report needs one results FILE, or two to compare (see tlsharden report --help)")
      end
      local title = c.opts.title
      local reps = {}
      for i, path in ipairs(c.args) do
        reps[i] = load(path)
        warn_bad(c, reps[i])
      end
      local rep, cmp = reps[#reps], nil
      if #reps == 2 then cmp = report.compare(reps[1], reps[2]) end
      if c.opts.html then
        write_file(c.opts.html, html.render(rep, { title = title, comparison = cmp,
          old_name = c.args[1], new_name = c.args[2] }))
      end
      local md
      if c.opts.markdown then
        md = markdown.render(rep, { title = title })
        if cmp then md = markdown.comparison(cmp, c.args[1], c.args[2]) .. "\n" .. md end
        if c.opts.markdown ~= "-" then write_file(c.opts.markdown, md) end
      end
      if c.json then
        local doc = json_counts(rep)
        doc.command = "report"
        if cmp then
          doc.compare = { old = c.args[1], new = c.args[2], same = cmp.same }
          for _, k in ipairs { "better", "worse", "added", "removed" } do doc.compare[k] = json.list(cmp[k]) end
        end
        c.out.line(json.encode(doc))
      elseif c.opts.markdown == "-" then
        c.out.line(md)
      elseif cmp then
        local o = c.out
        o.line(o.paint("bold", ("%s -> %s: %d better, %d worse, %d unchanged, %d new, %d gone"):format(
          c.args[1], c.args[2], #cmp.better, #cmp.worse, cmp.same, #cmp.added, #cmp.removed)))
        for _, sec in ipairs { { "better", "green" }, { "worse", "red" }, { "added", "bold" }, { "removed", "dim" } } do
          local items = cmp[sec[1]]
          if #items > 0 then
            o.line()
            o.line(o.paint(sec[2], sec[1]))
            local rows = {}
            for _, it in ipairs(items) do
              rows[#rows + 1] = { "  " .. it.target, it.kind, it.before or "-", "->", it.after or "-" }
            end
            o.columns(rows)
          end
        end
      else
        print_counts(c.out, rep)
      end
      return (cmp and #cmp.worse > 0) and EXIT_FINDING or EXIT_OK
    end,
  })
end
