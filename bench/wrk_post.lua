-- wrk script: POSTs the file named by $BODY_FILE (a JSON batch) on every
-- request, with $PREFER as a Prefer header when set.
--   BODY_FILE=b100.json PREFER=return=minimal wrk -s bench/wrk_post.lua URL
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE unset"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local prefer = os.getenv("PREFER")
if prefer and prefer ~= "" then wrk.headers["Prefer"] = prefer end
