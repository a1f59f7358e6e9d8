--- Walk a JSON document (or the plain table decoded from one) and list
-- every place that does not use tlsharden's one problem record
-- (lua/tlsharden/problems.lua): a `problems` value that is not a list of
-- records, a `failure` or `lookup` that is not a record, any other table
-- with a `code` field that is not a record, and any field named `finding`
-- or `findings`. Returns the list of violations (empty: the document is
-- clean) and how many records it saw.
local problems = require "tlsharden.problems"
local json = require "tlsharden.json"

local M = {}

local SINGLE = { failure = true, lookup = true }

function M.walk(doc)
  if type(doc) == "string" then doc = json.decode(doc) end
  local bad, seen = {}, 0
  local function record(p, path)
    local ok, why = problems.check(p)
    if ok then seen = seen + 1 else bad[#bad + 1] = path .. ": " .. why end
  end
  local function walk(v, path, visited)
    if type(v) ~= "table" or visited[v] then return end
    visited[v] = true
    if v.code ~= nil and type(v.code) ~= "number" then record(v, path) end
    for k, x in pairs(v) do
      local p = path .. "." .. tostring(k)
      if k == "finding" or k == "findings" then
        bad[#bad + 1] = p .. ": a field named " .. k
      elseif k == "problems" then
        if type(x) ~= "table" then
          bad[#bad + 1] = p .. ": not a list"
        else
          for i, item in ipairs(x) do
            if type(item) ~= "table" or item.code == nil then record(item, p .. "[" .. i .. "]") end
          end
        end
      elseif SINGLE[k] and type(x) == "table" and x.code == nil then
        record(x, p)
      end
      walk(x, p, visited)
    end
  end
  walk(doc, "$", {})
  return bad, seen
end

return M
