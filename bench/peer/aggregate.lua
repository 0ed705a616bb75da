-- The peer's batch aggregator (lua-nginx): reads a Microsoft Graph-shaped
-- JSON batch {"requests":[{"id","method","url"}, ...]}, fetches every item
-- through ngx.location.capture to the internal /_item location (proxy_pass to
-- an HTTP/1.1 upstream with keepalive), at most PARALLEL at once (light
-- threads pulling from one shared index: capture_multi of a whole batch is
-- quadratic for big batches), and answers 207 with a DAV: multistatus in the
-- same shape as batchgate's: href, status line, B:id, B:header, B:body (text
-- XML-escaped). `Prefer: return=minimal` omits headers and bodies, as
-- batchgate does. Entries are written in completion order, 256 at a time.
local cjson = require "cjson.safe"

local capture = ngx.location.capture
local concat = table.concat
local gsub = string.gsub
local find = string.find

local M = {}

local reasons = {
    [200] = "OK", [201] = "Created", [204] = "No Content", [301] = "Moved Permanently",
    [302] = "Found", [304] = "Not Modified", [400] = "Bad Request", [404] = "Not Found",
    [405] = "Method Not Allowed", [500] = "Internal Server Error", [502] = "Bad Gateway",
    [503] = "Service Unavailable", [504] = "Gateway Timeout",
}
local methods = {
    GET = ngx.HTTP_GET, HEAD = ngx.HTTP_HEAD, PUT = ngx.HTTP_PUT, POST = ngx.HTTP_POST,
    DELETE = ngx.HTTP_DELETE, PATCH = ngx.HTTP_PATCH, OPTIONS = ngx.HTTP_OPTIONS,
}
local hop_by_hop = {
    connection = true, ["keep-alive"] = true, te = true, ["transfer-encoding"] = true,
    upgrade = true, ["proxy-connection"] = true, ["proxy-authenticate"] = true,
    ["proxy-authorization"] = true, trailer = true,
}
local xml_escapes = { ["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;" }

local function xml(s)      -- text content
    s = tostring(s)
    if not find(s, "[<>&]") then return s end
    return (gsub(s, "[<>&]", xml_escapes))
end

local function xml_attr(s) -- attribute value
    s = tostring(s)
    if not find(s, '[<>&"]') then return s end
    return (gsub(s, '[<>&"]', xml_escapes))
end

local function bad(status, msg)
    ngx.status = status
    ngx.header["Content-Type"] = "application/problem+json"
    ngx.print(cjson.encode({ status = status, title = msg }))
end

function M.run()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return bad(405, "batch needs POST")
    end
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if not body then
        local file = ngx.req.get_body_file()
        if file then
            local f = io.open(file, "rb")
            body = f:read("*a")
            f:close()
        end
    end
    if not body then return bad(400, "empty batch") end
    local doc = cjson.decode(body)
    body = nil
    if type(doc) ~= "table" or type(doc.requests) ~= "table" then
        return bad(400, "not a Graph batch")
    end
    local reqs = doc.requests
    local n = #reqs
    local prefer = ngx.var.http_prefer
    local minimal = prefer ~= nil and find(prefer, "return=minimal", 1, true) ~= nil
    local parallel = tonumber(ngx.var.arg_parallel) or 64

    ngx.status = 207
    ngx.header["Content-Type"] = "application/xml; charset=utf-8"
    ngx.print('<?xml version="1.0" encoding="utf-8"?>\n'
        .. '<D:multistatus xmlns:D="DAV:" xmlns:B="urn:batchgate:batch">\n')

    local out, on, entries = {}, 0, 0
    local next_index = 1

    local function worker()
        while true do
            local i = next_index
            if i > n then return end
            next_index = i + 1
            local r = reqs[i]
            local url = r.url
            local method = methods[r.method or "GET"] or ngx.HTTP_GET
            local res = capture("/_item" .. url, { method = method })
            local status = res.status
            on = on + 1
            out[on] = "  <D:response>\n    <D:href>" .. xml(url) .. "</D:href>\n    <D:status>HTTP/1.1 "
                .. status .. " " .. (reasons[status] or "Unknown") .. "</D:status>\n"
            if r.id then
                on = on + 1
                out[on] = "    <B:id>" .. xml(r.id) .. "</B:id>\n"
            end
            if not minimal then
                for name, value in pairs(res.header) do
                    if not hop_by_hop[name:lower()] then
                        if type(value) == "table" then value = concat(value, ", ") end
                        on = on + 1
                        out[on] = '    <B:header name="' .. xml_attr(name) .. '">' .. xml(value) .. "</B:header>\n"
                    end
                end
                local b = res.body
                if b and #b > 0 then
                    on = on + 1
                    out[on] = "    <B:body>" .. xml(b) .. "</B:body>\n"
                end
            end
            on = on + 1
            out[on] = "  </D:response>\n"
            entries = entries + 1
            if entries % 256 == 0 then
                ngx.print(out)
                out, on = {}, 0
            end
        end
    end

    local threads = {}
    for k = 1, math.min(parallel, n) do
        threads[k] = ngx.thread.spawn(worker)
    end
    for k = 1, #threads do
        ngx.thread.wait(threads[k])
    end
    on = on + 1
    out[on] = "</D:multistatus>\n"
    ngx.print(out)
end

return M
