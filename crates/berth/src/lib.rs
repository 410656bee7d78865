//! The binary's configuration, as a library so that tools (the fuzz targets) read it exactly
//! as `berth serve` does.

pub mod config;
