//! The audit log as the layers above see it. Records are written by `berth-db` in the
//! transaction of each change; this names the types the HTTP layer needs (the operator of a
//! request, the records it lists) without it depending on the database crate.

pub use berth_db::audit::{AuditEvent, AuditRecord, AuditSettings, ChainReport, EVENT_TYPES, Operator};
