//! The command line (docs/contract.md §7). Every flag also reads an environment variable; a
//! `stocklake.toml` may set the same (see `config.rs` for the layering).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stocklake",
    version,
    about = "Real-time stock intelligence for supermarket chains, on a medallion lakehouse",
    long_about = "stocklake reads every till sale and delivery as a stream, keeps an auditable \
                  lakehouse of it (bronze raw JSON, silver Delta Lake, gold star schema) and tells \
                  each store what is running out, when, and how much to reorder.\n\n\
                  Start with `stocklake demo`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command understands.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Configuration file (default: ./stocklake.toml when it exists).
    #[arg(long, global = true, env = "STOCKLAKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Root of the embedded default: bronze, silver and the SQLite gold file live under it.
    #[arg(long, global = true, env = "STOCKLAKE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Bronze root: file://… or s3://bucket/prefix.
    #[arg(long, global = true, env = "STOCKLAKE_BRONZE", value_name = "URL")]
    pub bronze: Option<String>,
    /// Silver root: file://… or s3://bucket/prefix.
    #[arg(long, global = true, env = "STOCKLAKE_SILVER", value_name = "URL")]
    pub silver: Option<String>,
    /// Gold database: sqlite://PATH or postgres://user@host:port/db.
    #[arg(long, global = true, env = "STOCKLAKE_GOLD", value_name = "URL")]
    pub gold: Option<String>,
    /// Kinesis source: kinesis://STREAM (none: HTTP ingest only).
    #[arg(long, global = true, env = "STOCKLAKE_STREAM", value_name = "URL")]
    pub stream: Option<String>,
    /// Where gold is also published as Delta tables: file://… or s3://bucket/prefix.
    #[arg(long, global = true, env = "STOCKLAKE_GOLD_LAKE", value_name = "URL")]
    pub gold_lake: Option<String>,
    /// Address of the HTTP API and dashboard.
    #[arg(long, global = true, env = "STOCKLAKE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve a non-loopback --listen address without tokens, on purpose (docs/security.md).
    #[arg(long, global = true)]
    pub insecure_listen: bool,
    /// Directory holding products.csv and stores.csv.
    #[arg(long, global = true, env = "STOCKLAKE_MASTER_DATA", value_name = "DIR")]
    pub master_data: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "STOCKLAKE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole chain on embedded defaults in one process: a simulated chain, bronze, silver,
    /// gold, alerts and the dashboard.
    Demo(DemoArgs),
    /// The POS simulator: a supermarket chain's events, to stdout, a file, HTTP or Kinesis.
    Simulate(SimulateArgs),
    /// Creates what the configured backends need (buckets, stream, tables); safe to repeat.
    Init(InitArgs),
    /// Stream → bronze: reads Kinesis shards (and serves HTTP ingest) into bronze objects.
    Ingest(StageArgs),
    /// Bronze → silver: validated, deduplicated Delta Lake tables and the quarantine.
    Refine(StageArgs),
    /// Silver → gold: the star schema, stock levels and alerts.
    Model(StageArgs),
    /// Every stage plus the HTTP API and dashboard, supervised, in one process.
    Run(RunArgs),
    /// Checkpoints, lag and counts per stage.
    Status(StatusArgs),
    /// Rebuilds silver and gold from bronze (or gold from silver).
    Replay(ReplayArgs),
    /// Lists the open stock alerts.
    Alerts(AlertsArgs),
    /// The order proposals of a store: what to order, from which supplier, when and why.
    Orders(OrdersArgs),
    /// Measures alert quality against the simulator's ground truth, with the `[stock]` settings
    /// of the configuration (so a change can be judged before it is deployed).
    Evaluate(EvaluateArgs),
    /// Silver table care: compaction, checkpoints, vacuum.
    Maintain(MaintainArgs),
}

#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Seed: the same seed gives the same output, byte for byte.
    #[arg(long, env = "STOCKLAKE_SIM_SEED", default_value_t = 1)]
    pub seed: u64,
    /// Number of stores.
    #[arg(long, env = "STOCKLAKE_SIM_STORES", default_value_t = 20)]
    pub stores: usize,
    /// Number of products in the catalog.
    #[arg(long, env = "STOCKLAKE_SIM_SKUS", default_value_t = 2000)]
    pub skus: usize,
    /// Days to simulate.
    #[arg(long, env = "STOCKLAKE_SIM_DAYS", default_value_t = 7)]
    pub days: u32,
    /// First simulated instant: a date (YYYY-MM-DD, midnight UTC), an RFC 3339 time, or `now`.
    /// Default: 2026-11-02 (or now with --realtime).
    #[arg(long, env = "STOCKLAKE_SIM_START")]
    pub start: Option<String>,
    /// Where records go: stdout, file:PATH, http://HOST:PORT, kinesis://STREAM.
    #[arg(long, env = "STOCKLAKE_SIM_TO", default_value = "stdout")]
    pub to: String,
    /// Record form: canonical, or legacy (the original producer's flat sale lines).
    #[arg(long, env = "STOCKLAKE_SIM_FORMAT", default_value = "canonical")]
    pub format: String,
    /// Share of records followed by a malformed or repeated one (0–1).
    #[arg(long, env = "STOCKLAKE_SIM_BAD_RATE", default_value_t = 0.0)]
    pub bad_rate: f64,
    /// Unrecorded theft, relative to typical (0 turns it off).
    #[arg(long, env = "STOCKLAKE_SIM_SHRINK", default_value_t = 1.0)]
    pub shrink: f64,
    /// Write the ground truth (true shelf stock, stock-out episodes) to this NDJSON file.
    #[arg(long, env = "STOCKLAKE_SIM_TRUTH", value_name = "PATH")]
    pub truth: Option<PathBuf>,
    /// Print a summary of what was simulated on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Write products.csv, stores.csv and suppliers.csv into this directory.
    #[arg(long, env = "STOCKLAKE_SIM_CATALOG_OUT", value_name = "DIR")]
    pub catalog_out: Option<PathBuf>,
    /// Leave out the order feed: stores send no `purchase_order` events and receipts name no
    /// order (as a chain whose ordering system is not connected).
    #[arg(long, env = "STOCKLAKE_SIM_NO_PURCHASE_ORDERS")]
    pub no_purchase_orders: bool,
    /// Pace records to the wall clock.
    #[arg(long)]
    pub realtime: bool,
    /// Simulated seconds per wall-clock second with --realtime.
    #[arg(long, env = "STOCKLAKE_SIM_SPEED", default_value_t = 1.0)]
    pub speed: f64,
    /// Bearer token for an HTTP target.
    #[arg(long, env = "STOCKLAKE_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct StageArgs {
    /// Process what is there and exit (otherwise keep going).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct InitArgs {
    /// Shards of the Kinesis stream when it is created.
    #[arg(long, env = "STOCKLAKE_SHARDS")]
    pub shards: Option<u32>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Stop after this long (e.g. 90s, 10m); otherwise run until Ctrl-C.
    #[arg(long, env = "STOCKLAKE_DEMO_DURATION")]
    pub duration: Option<String>,
    /// Simulated seconds per wall-clock second.
    #[arg(long, env = "STOCKLAKE_DEMO_SPEED", default_value_t = 1440.0)]
    pub speed: f64,
    /// Stores in the simulated chain.
    #[arg(long, default_value_t = 12)]
    pub stores: usize,
    /// Products in the simulated catalog.
    #[arg(long, default_value_t = 600)]
    pub skus: usize,
    /// Seed of the simulated chain.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Args, Clone, Default)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ReplayArgs {
    /// Rebuild only gold from the current silver tables.
    #[arg(long)]
    pub gold_only: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct OrdersArgs {
    /// The store (its `store_id`).
    #[arg(long)]
    pub store: String,
    /// Only proposals for this order day (YYYY-MM-DD).
    #[arg(long)]
    pub date: Option<chrono::NaiveDate>,
    /// Only this supplier.
    #[arg(long)]
    pub supplier: Option<String>,
    /// Print CSV (for an ordering system) instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// At most this many lines.
    #[arg(long, default_value_t = 10_000)]
    pub limit: usize,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AlertsArgs {
    /// Only this store.
    #[arg(long)]
    pub store_id: Option<String>,
    /// Include resolved alerts.
    #[arg(long)]
    pub all: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args, Clone)]
pub struct EvaluateArgs {
    #[arg(long, default_value_t = 20)]
    pub stores: usize,
    #[arg(long, default_value_t = 2000)]
    pub skus: usize,
    #[arg(long, default_value_t = 28)]
    pub days: u32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Leave out the order feed (no `purchase_order` events; receipts name no order), to judge
    /// the alerts on receipts alone.
    #[arg(long)]
    pub no_purchase_orders: bool,
    /// Write the result table (markdown) to this file as well.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Keep the run's lake and gold database in this directory (default: a temporary one).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Closed loop: the stores order by this policy, day by day, and the shelves are measured
    /// (availability, lost units, inventory, waste). Several may be given (`--policy
    /// stocklake,store` or the option repeated); without it, alert quality is judged.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub policy: Vec<Policy>,
    /// Print the closed loop's result as one JSON object.
    #[arg(long, requires = "policy")]
    pub json: bool,
    /// Closed loop: the service level the stores that order by stocklake's proposals (and the
    /// oracle) set for every product — the share of demand to serve from the shelf, 0.5 to
    /// 0.9999 — in place of the catalog's; it trades stock for availability. The static rules
    /// keep the catalog's.
    #[arg(long, requires = "policy", value_parser = service_level)]
    pub service_level: Option<f64>,
}

fn service_level(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("not a number: {s}"))?;
    if (0.5..=0.9999).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0.5 and 0.9999"))
    }
}

/// How the simulated stores order in a closed-loop evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Policy {
    /// The order proposals stocklake's gold holds, as a store that follows them would.
    Stocklake,
    /// The stores' own reorder rule (what they do without stocklake).
    Store,
    /// Order up to a fixed level when the recorded stock position falls under the reorder
    /// point of a static safety stock, both from the first week's sales.
    StaticSs,
    /// A min/max reordering rule, levels from the first week's sales.
    MinMax,
    /// stocklake's ordering arithmetic fed the truth: the real shelf stock and the expected
    /// demand.
    Oracle,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Stocklake => "stocklake",
            Policy::Store => "store",
            Policy::StaticSs => "static-ss",
            Policy::MinMax => "min-max",
            Policy::Oracle => "oracle",
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct MaintainArgs {
    /// Hours of history vacuum keeps.
    #[arg(long, default_value_t = 168)]
    pub retention_hours: u64,
}
