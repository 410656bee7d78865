//! The audit log as the layers above see it. Records are written by `berth-db` in the
//! transaction of each change; this names the types the HTTP layer needs (the operator of a
//! request, the records it lists) without it depending on the database crate.

pub use berth_db::audit::{AuditEvent, AuditRecord, AuditSettings, AuditSink, ChainReport, EVENT_TYPES, Operator};

use std::sync::Arc;

use crate::syslog::{Endpoint, ForwardStats, Forwarder, Severity, format_rfc5424, sd_escape};

/// Forwards committed audit records to a syslog server, one RFC 5424 message each: Harbor's
/// fields in the message, the record's id and chain hash as structured data.
pub struct SyslogAuditSink {
    forwarder: Forwarder,
}

/// The forwarder's state as `berth_audit_forward_*` metrics.
struct AuditForwardStats;

impl ForwardStats for AuditForwardStats {
    fn queued(&self, n: usize) {
        berth_metrics::metrics().audit_forward_queued.set(n as i64);
    }

    fn sent(&self) {
        berth_metrics::metrics().audit_forward_sent.inc();
    }

    fn dropped(&self) {
        berth_metrics::metrics().audit_forward_dropped.inc();
    }
}

impl SyslogAuditSink {
    /// Starts forwarding to `endpoint` with room for `buffer` lines while the server is away.
    pub fn start(endpoint: &str, buffer: usize, ca_pem: Option<Vec<u8>>) -> Result<Arc<SyslogAuditSink>, String> {
        let endpoint = Endpoint::parse(endpoint)?;
        let forwarder = Forwarder::start(endpoint, buffer, ca_pem, Arc::new(AuditForwardStats))?;
        Ok(Arc::new(SyslogAuditSink { forwarder }))
    }

    /// Lines not yet written to the server.
    pub fn pending(&self) -> usize {
        self.forwarder.pending()
    }
}

/// The message of a record: Harbor's forwarded fields, quoted.
pub fn audit_message(r: &AuditRecord) -> String {
    let q = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let e = &r.event;
    format!(
        "operator=\"{}\" time=\"{}\" resourceType=\"{}\" resource=\"{}\" operation=\"{}\" operationDescription=\"{}\" result=\"{}\" clientIP=\"{}\"",
        q(&r.username),
        crate::time::rfc3339_millis(r.op_time),
        e.resource_type,
        q(&e.resource),
        e.operation,
        q(&e.description),
        if e.succeeded { "success" } else { "failure" },
        q(r.source.as_deref().unwrap_or("")),
    )
}

impl berth_db::AuditSink for SyslogAuditSink {
    fn forward(&self, r: &AuditRecord) {
        // A record kept only here (skip_audit_log_database) has no id nor hash.
        let sd = if r.hash.is_empty() {
            String::new()
        } else {
            format!("[audit@32473 id=\"{}\" hash=\"{}\"]", r.id, sd_escape(&r.hash))
        };
        let severity = if r.event.succeeded { Severity::Info } else { Severity::Warning };
        self.forwarder.send(format_rfc5424(severity, "berth-audit", "audit", &sd, &audit_message(r)));
    }
}
