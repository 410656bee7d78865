//! Berth's vulnerability scanner.
//!
//! What it will own (DESIGN.md, `scan`): layer analysis, package databases, the
//! vulnerability database and matching, SBOMs, reports, and the client for external scanner
//! adapters. It knows nothing of HTTP serving or of the registry's tables: the registry hands
//! it bytes and records what it answers.
//!
//! So far: [`version`], the version orderings of each package ecosystem; [`advisory`], the
//! vulnerability database's model and OSV's matching rules; [`osv`] and [`feed`], reading
//! advisories as their upstreams publish them (and [`secdb`], Alpine's); [`os`] and [`pkgdb`],
//! the operating system and the packages installed in an image.

pub mod advisory;
pub mod feed;
pub mod inventory;
pub mod layers;
pub mod matching;
pub mod os;
pub mod osv;
pub mod pkgdb;
pub mod secdb;
pub mod version;
