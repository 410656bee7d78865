//! The `berth` binary: configuration, start-up and shutdown.

mod gc;
mod health;
mod migrate;
mod server;
mod tls;
mod vulndb;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use berth::config::{Config, HttpOverride, Overrides};

/// Berth: a container registry in one binary.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry. With no flags and no file: data under ./berth-data, listening on
    /// 127.0.0.1:5000. Every configuration key can also be set as BERTH_<KEY> with `__`
    /// between levels (BERTH_HTTP__ADDR), which wins over the file.
    Serve(ServeArgs),
    /// Administration of an installation.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The vulnerability database the built-in scanner matches packages against.
    #[command(subcommand)]
    Vulndb(VulndbCommand),
    /// Exit 0 when the registry on this machine is alive (its `/livez` answers 200), else 1:
    /// the container image's health check, which needs no curl.
    Healthcheck(InstallationArgs),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Copy an embedded installation (SQLite, local blobs) to the external PostgreSQL and blob
    /// root of another configuration, and verify the copy (row counts, blob digests). Stop
    /// the registry first; the target database must be fresh.
    MigrateData(MigrateArgs),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run a garbage collection now and follow it to its end (a progress bar on standard
    /// error, the log and a summary on standard output); exits with status 1 unless it
    /// succeeds. Pushes and pulls go on meanwhile: the registry need not be stopped.
    Gc(GcCommandArgs),
}

#[derive(clap::Args)]
struct GcCommandArgs {
    #[command(flatten)]
    installation: InstallationArgs,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete untagged artifacts first (with their accessories).
    #[arg(long)]
    delete_untagged: bool,
    /// Deletions from storage at once, 1 to 10.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

#[derive(Subcommand)]
enum VulndbCommand {
    /// Import advisories for an air-gapped installation: PATH is a directory, a .tar.gz or a
    /// .zip in the upstream's own layout (OSV records in JSON or YAML, such as RustSec's,
    /// Go's, PyPA's or osv.dev's all.zip; Alpine's secdb). Each feed it holds replaces the
    /// same feed's earlier import, whole; nothing changes if any record is broken. The
    /// registry may be running: its next scan uses the new data.
    Import(VulndbImportArgs),
}

#[derive(clap::Args)]
struct VulndbImportArgs {
    #[command(flatten)]
    installation: InstallationArgs,
    /// The feed to import.
    path: PathBuf,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the audit log's hash chain and report every record altered or removed outside
    /// Berth; exits with status 1 when there is any.
    Verify(InstallationArgs),
}

#[derive(clap::Args)]
struct InstallationArgs {
    /// The installation's configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The installation's data directory [default: ./berth-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The installation's configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The installation's data directory [default: ./berth-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The configuration to move to (with database.type: external).
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A YAML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the embedded database and blobs [default: ./berth-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on, ADDR:PORT; port 0 picks a free port [default: 127.0.0.1:5000].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
}

fn main() -> anyhow::Result<()> {
    // Everything Berth writes (database, keys, blobs, uploads) is its own only, whatever umask
    // it was started under. umask never fails and only affects this process.
    // SAFETY: umask has no preconditions and touches no memory.
    unsafe { libc::umask(0o077) };
    // Every TLS client of the process (object storage, OTLP, syslog over TLS) uses ring.
    berth_store::install_tls_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let overrides = Overrides { data_dir: args.data_dir, http: args.listen.map(|addr| HttpOverride { addr }) };
            let config = Config::load(args.config.as_deref(), overrides)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(async {
                // In the runtime: forwarding to syslog runs as a task.
                let traces = server::init_logging(
                    &config.log,
                    &config.trace,
                    &config.proxy.route(berth_outbound::Component::Core)?,
                )?;
                let served = server::run(config).await;
                if let Some(traces) = traces {
                    // Sends what is still batched.
                    let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
                }
                served
            })
        }
        Command::Healthcheck(args) => {
            let config = Config::load(args.config.as_deref(), Overrides { data_dir: args.data_dir, http: None })?;
            if let Err(e) = health::check(&config) {
                eprintln!("unhealthy: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Admin(AdminCommand::MigrateData(args)) => {
            let source = Config::load(args.config.as_deref(), Overrides { data_dir: args.data_dir, http: None })?;
            // The target comes from its file alone: the environment describes the source.
            let target = Config::load_file_only(&args.to)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(migrate::run(&source, &target))
        }
        Command::Admin(AdminCommand::Gc(args)) => {
            let overrides = Overrides { data_dir: args.installation.data_dir, http: None };
            let config = Config::load(args.installation.config.as_deref(), overrides)?;
            let gc = gc::GcArgs { dry_run: args.dry_run, delete_untagged: args.delete_untagged, workers: args.workers };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            if !runtime.block_on(gc::run(&config, &gc))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Vulndb(VulndbCommand::Import(args)) => {
            let overrides = Overrides { data_dir: args.installation.data_dir, http: None };
            let config = Config::load(args.installation.config.as_deref(), overrides)?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(vulndb::import(&config, &args.path))
        }
        Command::Admin(AdminCommand::Audit(AuditCommand::Verify(args))) => {
            let config = Config::load(args.config.as_deref(), Overrides { data_dir: args.data_dir, http: None })?;
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let report = runtime.block_on(server::verify_audit_chain(&config))?;
            for problem in &report.problems {
                println!("{problem}");
            }
            println!("{} records checked, {} problems", report.records, report.problems.len());
            if !report.problems.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
