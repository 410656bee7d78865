#!/usr/bin/env python3
"""Writes berth-dashboard.json, the Grafana dashboard: the panels as code, the JSON generated.
Run it after changing a panel; crates/berth/tests/monitoring.rs checks every expression."""
import json
import os

panels = []


def panel(title, exprs, unit="short", w=12, h=8, kind="timeseries"):
    panels.append({"title": title, "kind": kind, "unit": unit, "w": w, "h": h, "exprs": exprs})


panel("Components up (1 up, 0 down)", [("min by (component) (harbor_up)", "{{component}}")], kind="stat", w=8, h=4)
panel("Ready replicas", [("sum(harbor_health)", "ready")], kind="stat", w=4, h=4)
panel("Projects / repositories / artifacts", [
    ("sum(max by (public) (harbor_project_total))", "projects"),
    ("sum(max by (project_name) (harbor_project_repo_total))", "repositories"),
    ("sum(max by (project_name, artifact_type) (harbor_project_artifact_total))", "artifacts")], kind="stat", w=12, h=4)
panel("/v2 requests by handler", [("sum by (handler) (rate(registry_http_requests_total[$__rate_interval]))", "{{handler}}")], "reqps")
panel("/v2 errors by code", [("sum by (code) (rate(registry_http_requests_total{code=~\"5..|429|404\"}[$__rate_interval]))", "{{code}}")], "reqps")
panel("/v2 p99 latency by handler", [("histogram_quantile(0.99, sum by (le, handler) (rate(registry_http_request_duration_seconds_bucket[$__rate_interval])))", "{{handler}}")], "s")
panel("In-flight requests", [
    ("sum by (handler) (registry_http_in_flight_requests)", "/v2 {{handler}}"),
    ("sum(harbor_core_http_inflight_requests)", "API")])
panel("API requests by operation (top 10)", [("topk(10, sum by (operation) (rate(harbor_core_http_request_total[$__rate_interval])))", "{{operation}}")], "reqps")
panel("API p99 latency by operation", [("topk(10, max by (operation) (harbor_core_http_request_duration_seconds{quantile=\"0.99\"}))", "{{operation}}")], "s")
panel("Body bytes", [
    ("sum(rate(berth_http_received_bytes_total[$__rate_interval]))", "received"),
    ("sum(rate(berth_http_sent_bytes_total[$__rate_interval]))", "sent")], "Bps")
panel("Storage p99 by action", [("histogram_quantile(0.99, sum by (le, action) (rate(registry_storage_action_seconds_bucket[$__rate_interval])))", "{{action}}")], "s")
panel("Blob volume free", [("berth_storage_volume_bytes{kind=\"free\"} / ignoring(kind) berth_storage_volume_bytes{kind=\"total\"}", "{{instance}}")], "percentunit")
panel("Uploads", [
    ("sum(berth_blob_uploads_in_flight)", "upload requests in flight"),
    ("max(berth_upload_sessions)", "upload sessions open")])
panel("Cache hit ratio", [("sum(rate(registry_storage_cache_total{type=\"Hit\"}[$__rate_interval])) / sum(rate(registry_storage_cache_total{type=\"Request\"}[$__rate_interval]))", "hits")], "percentunit")
panel("Pulls by project (top 10)", [("topk(10, max by (project_name) (harbor_artifact_pulled))", "{{project_name}}")])
panel("Storage used by project (top 10)", [("topk(10, max by (project_name) (harbor_project_quota_usage_byte))", "{{project_name}}")], "bytes")
panel("Failed logins", [("sum(rate(berth_login_failures_total[$__rate_interval]))", "failed logins")], "ops")
panel("Database pool", [("sum by (state) (berth_db_pool_connections)", "{{state}}")])
panel("Audit forwarding", [
    ("sum(berth_audit_forward_queued)", "queued"),
    ("sum(rate(berth_audit_forward_sent_total[$__rate_interval]))", "sent/s"),
    ("sum(increase(berth_audit_forward_dropped_total[$__rate_interval]))", "dropped")])
panel("Jobs waiting and their wait", [
    ("max by (type) (harbor_task_queue_size)", "{{type}} waiting"),
    ("max by (type) (harbor_task_queue_latency)", "{{type}} oldest wait (s)"),
])
panel("Job runs by outcome", [("sum by (type, status) (increase(harbor_jobservice_task_total[$__rate_interval]))", "{{type}} {{status}}")])
panel("Jobs running by replica pool", [("max by (type, pool) (harbor_task_concurrency)", "{{type}} on {{pool}}")])
panel("Memory", [("process_resident_memory_bytes", "{{instance}}")], "bytes")
panel("CPU", [("rate(process_cpu_seconds_total[$__rate_interval])", "{{instance}}")], "percentunit")

source = {"type": "prometheus", "uid": "${datasource}"}
out = []
x = y = row_h = 0
for i, p in enumerate(panels):
    if x + p["w"] > 24:
        x, y, row_h = 0, y + row_h, 0
    out.append({
        "id": i + 1,
        "type": p["kind"],
        "title": p["title"],
        "datasource": source,
        "gridPos": {"x": x, "y": y, "w": p["w"], "h": p["h"]},
        "fieldConfig": {"defaults": {"unit": p["unit"]}, "overrides": []},
        "options": {},
        "targets": [{"refId": chr(65 + j), "expr": e, "legendFormat": l, "datasource": source}
                    for j, (e, l) in enumerate(p["exprs"])],
    })
    x += p["w"]
    row_h = max(row_h, p["h"])

dashboard = {
    "title": "Berth",
    "uid": "berth-overview",
    "description": "Berth, under Harbor's metric names where Harbor has them. See docs/metrics.md.",
    "tags": ["berth", "harbor", "registry"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "refresh": "30s",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "options": []}]},
    "panels": out,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "berth-dashboard.json")
with open(path, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
