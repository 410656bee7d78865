//! Berth's vulnerability scanner.
//!
//! What it will own (DESIGN.md, `scan`): layer analysis, package databases, the
//! vulnerability database and matching, SBOMs, reports, and the client for external scanner
//! adapters. It serves no HTTP and writes no SQL: it reads blobs from the store and asks
//! `db::vulndb` and `db::scans` for what it keeps.
//!
//! So far: [`version`], the version orderings of each package ecosystem; [`advisory`], the
//! vulnerability database's model and OSV's matching rules; [`osv`], [`secdb`], [`oval`] and [`feed`],
//! reading advisories as their upstreams publish them; [`vulndb`], the database in the
//! registry's tables; [`os`], [`pkgdb`], [`langpkg`], [`layers`] and [`inventory`], what an image holds;
//! [`matching`], its findings; [`report`], Harbor's report formats; [`job`], the scan job.

pub mod advisory;
pub mod download;
pub mod dsa;
pub mod feed;
pub mod gobinary;
pub mod inventory;
pub mod job;
pub mod langpkg;
pub mod layers;
pub mod matching;
pub mod os;
pub mod osv;
pub mod oval;
pub mod pkgdb;
pub mod report;
pub mod report_index;
pub mod scan_all;
pub mod secdb;
pub mod version;
pub mod vulndb;
