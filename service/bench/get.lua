-- wrk script: GET /v1/ControlPlane/Stores/{storeId}/TraitGroups, the service's cheapest
-- authenticated route (the schema, no storage work): the HTTP limit the PATCH numbers are
-- compared with. Credentials as in patch.lua ($AUTHORIZATION).
local store = os.getenv("STORE_ID") or "mem_store_00000000000000000000000000"

wrk.method = "GET"
wrk.path = "/v1/ControlPlane/Stores/" .. store .. "/TraitGroups"
wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")

done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f  p50: %.2f ms  p99: %.2f ms  non-2xx/3xx: %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
