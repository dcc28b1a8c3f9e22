-- wrk script of benches/e2e/run.sh: manifest GET by tag with an OCI Accept
-- header; prints one JSON line at the end (requests/s, p50/p99/max in ms,
-- errors = connect + read + write + timeout + non-2xx answers).
wrk.method = "GET"
wrk.headers["Accept"] = "application/vnd.oci.image.manifest.v1+json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"errors":%d,"duration_s":%.6f,"rps":%.3f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
