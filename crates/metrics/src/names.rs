//! Every metric the process keeps in memory, by the name it is exported under. Harbor's names
//! and labels where Harbor has the metric (see docs/metrics.md), `berth_` where it has none.
//! Metrics computed at scrape time (the business counters, health) are written by the API.

use std::sync::LazyLock;

use crate::exposition::Encoder;
use crate::family::Family;
use crate::value::{Counter, Gauge, Histogram, Summary};
use crate::{DURATION_BUCKETS, SIZE_BUCKETS};

pub struct Metrics {
    /// `harbor_core_http_request_total{code, method, operation}`: requests outside `/v2`.
    pub core_requests: Family<Counter>,
    /// `harbor_core_http_request_duration_seconds{method, operation}`.
    pub core_duration: Family<Summary>,
    /// `harbor_core_http_inflight_requests{operation}`.
    pub core_inflight: Family<Gauge>,
    /// `registry_http_requests_total{code, handler, method}`: requests to `/v2`.
    pub registry_requests: Family<Counter>,
    /// `registry_http_request_duration_seconds{handler, method}`.
    pub registry_duration: Family<Histogram>,
    /// `registry_http_request_size_bytes{handler}`: request bodies, counted as read.
    pub registry_request_size: Family<Histogram>,
    /// `registry_http_response_size_bytes{handler}`: response bodies, counted as sent.
    pub registry_response_size: Family<Histogram>,
    /// `registry_http_in_flight_requests{handler}`.
    pub registry_inflight: Family<Gauge>,
    /// `registry_storage_action_seconds{action, driver}`: each call into the storage driver.
    pub storage_action: Family<Histogram>,
    /// `registry_storage_cache_total{type}`: Request, Hit, Miss, Error, as Distribution counts
    /// its blob descriptor cache; here the manifest and tag cache.
    pub storage_cache: Family<Counter>,
    /// `berth_http_received_bytes_total`, `berth_http_sent_bytes_total`: body bytes, all routes.
    pub received_bytes: Counter,
    pub sent_bytes: Counter,
    /// `berth_login_failures_total`: logins refused (wrong password, unknown or locked account;
    /// users and robots), for the alert on repeated authentication failures.
    pub login_failures: Counter,
    /// `berth_limit_refusals_total{limit}`: requests and connections refused by a limit that
    /// keeps one client from taking what others need (`connections`, `connections_per_client`,
    /// `password_queue`, `uploads_per_client`, `login_delay`).
    pub limit_refusals: Family<Counter>,
    /// `berth_http_connections_open`.
    pub connections_open: Gauge,
    /// `berth_blob_uploads_in_flight`: blob upload requests (POST, PATCH, PUT) being received.
    pub uploads_in_flight: Gauge,
    /// `berth_audit_forward_dropped_total`: audit lines dropped because the forwarding buffer
    /// was full (the syslog server away for longer than the buffer lasts).
    pub audit_forward_dropped: Counter,
    /// `berth_audit_forward_sent_total`, `berth_audit_forward_queued`.
    pub audit_forward_sent: Counter,
    pub audit_forward_queued: Gauge,
    /// `harbor_jobservice_task_total{type, status}`: job runs by kind and how they ended
    /// (`Success`, `Error`, `Stopped`; a failed run that will be retried is an `Error`).
    pub job_tasks: Family<Counter>,
    /// `harbor_jobservice_task_process_time_seconds{type, status}`: how long runs took.
    pub job_process_time: Family<Summary>,
    start_time_seconds: f64,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn size_histogram() -> Histogram {
    Histogram::new(SIZE_BUCKETS)
}

impl Metrics {
    fn new() -> Metrics {
        let start_time_seconds =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Metrics {
            core_requests: Family::new(
                "harbor_core_http_request",
                "The total number of requests",
                &["code", "method", "operation"],
                Counter::default,
            ),
            core_duration: Family::new(
                "harbor_core_http_request_duration_seconds",
                "The time duration of the requests",
                &["method", "operation"],
                Summary::default,
            ),
            core_inflight: Family::new(
                "harbor_core_http_inflight_requests",
                "The total number of requests in flight",
                &["operation"],
                Gauge::default,
            ),
            registry_requests: Family::new(
                "registry_http_requests",
                "The number of requests received.",
                &["code", "handler", "method"],
                Counter::default,
            ),
            registry_duration: Family::new(
                "registry_http_request_duration_seconds",
                "The latency of the HTTP requests.",
                &["handler", "method"],
                duration_histogram,
            ),
            registry_request_size: Family::new(
                "registry_http_request_size_bytes",
                "The size of the HTTP requests.",
                &["handler"],
                size_histogram,
            ),
            registry_response_size: Family::new(
                "registry_http_response_size_bytes",
                "The size of the HTTP responses.",
                &["handler"],
                size_histogram,
            ),
            registry_inflight: Family::new(
                "registry_http_in_flight_requests",
                "The in-flight HTTP requests",
                &["handler"],
                Gauge::default,
            ),
            storage_action: Family::new(
                "registry_storage_action_seconds",
                "The number of seconds that the storage action takes",
                &["action", "driver"],
                duration_histogram,
            ),
            storage_cache: Family::new(
                "registry_storage_cache",
                "The number of cache request received",
                &["type"],
                Counter::default,
            ),
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            login_failures: Counter::default(),
            limit_refusals: Family::new(
                "berth_limit_refusals",
                "Requests and connections refused by a limit on one client or on the process.",
                &["limit"],
                Counter::default,
            ),
            connections_open: Gauge::default(),
            uploads_in_flight: Gauge::default(),
            audit_forward_dropped: Counter::default(),
            audit_forward_sent: Counter::default(),
            audit_forward_queued: Gauge::default(),
            job_tasks: Family::new(
                "harbor_jobservice_task",
                "The number of processed tasks",
                &["type", "status"],
                Counter::default,
            ),
            job_process_time: Family::new(
                "harbor_jobservice_task_process_time_seconds",
                "The time duration of the task process time",
                &["type", "status"],
                Summary::default,
            ),
            start_time_seconds,
        }
    }

    /// Writes every in-memory metric and the process metrics.
    pub fn encode(&self, enc: &mut Encoder) {
        use crate::Kind;
        self.core_requests.encode(enc);
        self.core_duration.encode(enc);
        self.core_inflight.encode(enc);
        self.registry_requests.encode(enc);
        self.registry_duration.encode(enc);
        self.registry_request_size.encode(enc);
        self.registry_response_size.encode(enc);
        self.registry_inflight.encode(enc);
        self.storage_action.encode(enc);
        self.storage_cache.encode(enc);
        self.limit_refusals.encode(enc);
        self.job_tasks.encode(enc);
        self.job_process_time.encode(enc);
        let counters = [
            ("berth_http_received_bytes", "Request body bytes received.", &self.received_bytes),
            ("berth_http_sent_bytes", "Response body bytes sent.", &self.sent_bytes),
            (
                "berth_login_failures",
                "Logins refused: wrong password, unknown or locked account.",
                &self.login_failures,
            ),
            (
                "berth_audit_forward_dropped",
                "Audit lines dropped because the forwarding buffer was full.",
                &self.audit_forward_dropped,
            ),
            ("berth_audit_forward_sent", "Audit lines written to the syslog server.", &self.audit_forward_sent),
        ];
        for (name, help, c) in counters {
            enc.header(name, help, Kind::Counter);
            enc.sample(name, "_total", &[], &[], None, c.get());
        }
        let gauges = [
            ("berth_blob_uploads_in_flight", "Blob upload requests being received.", &self.uploads_in_flight),
            ("berth_http_connections_open", "HTTP connections open.", &self.connections_open),
            ("berth_audit_forward_queued", "Audit lines waiting in the forwarding buffer.", &self.audit_forward_queued),
        ];
        for (name, help, g) in gauges {
            enc.header(name, help, Kind::Gauge);
            enc.sample(name, "", &[], &[], None, g.get());
        }
        crate::process::encode(enc, self.start_time_seconds);
    }
}
