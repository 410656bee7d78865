//! Berth's vulnerability scanner.
//!
//! What it will own (DESIGN.md, `scan`): layer analysis, package databases, the
//! vulnerability database and matching, SBOMs, reports, and the client for external scanner
//! adapters. It knows nothing of HTTP serving or of the registry's tables: the registry hands
//! it bytes and records what it answers.
//!
//! So far: [`version`], the version orderings of each package ecosystem, on which matching an
//! installed package against an advisory's ranges rests.

pub mod version;
