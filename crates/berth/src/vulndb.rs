//! `berth vulndb import`: a feed read from disk into the installation's database.

use std::path::Path;

use berth::config::Config;

/// Imports `path` and prints what each feed now holds.
pub async fn import(config: &Config, path: &Path) -> anyhow::Result<()> {
    // An air-gapped installation may import before its first start.
    crate::server::prepare_data_dir(&config.data_dir)?;
    let db = crate::server::open_database(config).await?;
    let imported = berth_scan::vulndb::import(&db, path).await?;
    for feed in &imported.feeds {
        println!("{}: {} advisories", feed.name, feed.advisories);
    }
    println!(
        "imported {} advisories from {} ({} other files passed over)",
        imported.walk.advisories,
        path.display(),
        imported.walk.skipped
    );
    Ok(())
}
