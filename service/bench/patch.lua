-- wrk script: PATCH /v1/Stores/{storeId}/Profiles/{profileId} round-robin over the profiles
-- listed (one id a line) in the file named by $PROFILES, with HTTP Basic credentials from
-- $TWILIO_ACCOUNT_SID / $TWILIO_AUTH_TOKEN (encoded by the caller into $AUTHORIZATION).
local ids = {}
for line in io.lines(os.getenv("PROFILES")) do ids[#ids + 1] = line end
local store = os.getenv("STORE_ID") or "mem_store_00000000000000000000000000"
local n = 0

wrk.method = "PATCH"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")

request = function()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  local body = string.format(
    '{"traits": {"Contact": {"lastName": "Load-%d", "city": "City %d"}, "Activity": {"visitCount": %d, "vip": %s}}}',
    n, n % 97, n, (n % 2 == 0) and "true" or "false")
  return wrk.format(nil, "/v1/Stores/" .. store .. "/Profiles/" .. id, nil, body)
end

local non_202 = 0
response = function(status, headers, body)
  if status ~= 202 then non_202 = non_202 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f  p50: %.2f ms  p99: %.2f ms  non-2xx/3xx: %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
