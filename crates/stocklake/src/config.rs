//! Layered configuration: defaults → `stocklake.toml` → environment → flags.
//!
//! `defaults.toml` holds every key with its default and a comment; it is the reference
//! (docs/configuration.md is kept in step with it by a test). A key in the file that is not
//! there, or of another type, fails at start with the key named.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use stocklake_storage::{AwsOptions, Location};
use toml::{Table, Value};

use crate::cli::GlobalArgs;

/// Every key with its default, and the configuration reference.
pub const DEFAULTS: &str = include_str!("defaults.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bronze: String,
    pub silver: String,
    pub gold: String,
    pub stream: String,
    pub gold_lake: String,
    pub gold_lake_interval_secs: u64,
    pub listen: String,
    pub insecure_listen: bool,
    pub master_data: String,
    pub log_format: String,
    pub aws: AwsSection,
    pub ingest: IngestSection,
    pub refine: RefineSection,
    pub stock: StockSection,
    pub alerts: AlertsSection,
    pub serve: ServeSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSection {
    pub endpoint_url: String,
    pub region: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    pub flush_interval_ms: u64,
    pub flush_bytes: u64,
    pub max_body_bytes: u64,
    pub max_records_per_request: u64,
    pub max_queued_bytes: u64,
    pub max_inflight_body_bytes: u64,
    pub body_read_timeout_secs: u64,
    pub tokens: Vec<String>,
    pub tokens_file: String,
    pub rate_limit_per_second: u64,
    pub shards: u32,
}

impl std::fmt::Debug for IngestSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestSection")
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("flush_bytes", &self.flush_bytes)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_records_per_request", &self.max_records_per_request)
            .field("max_queued_bytes", &self.max_queued_bytes)
            .field("max_inflight_body_bytes", &self.max_inflight_body_bytes)
            .field("body_read_timeout_secs", &self.body_read_timeout_secs)
            .field("tokens", &format!("{} set", self.tokens.len()))
            .field("tokens_file", &self.tokens_file)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("shards", &self.shards)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefineSection {
    pub dedup_window_days: u32,
    pub max_future_hours: u32,
    pub max_past_days: u32,
    pub batch_max_objects: u32,
    pub batch_max_mb: u32,
    pub maintenance_interval_secs: u64,
    pub vacuum_retention_hours: u64,
    pub compact_min_files: u32,
    pub compact_after_commits: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockSection {
    pub default_lead_time_days: u32,
    pub default_service_level: f64,
    pub demand_half_life_days: f64,
    pub overstock_days: f64,
    pub phantom_probability: f64,
    pub min_history_days: u32,
    pub order_risk: f64,
    pub phantom_min_sales_per_day: f64,
    pub stockout_window_hours: u32,
    pub stockout_hold_hours: u32,
    pub low_cover_share: f64,
    pub low_cover_share_held: f64,
    pub order_risk_hold_share: f64,
    pub safety_stock_clear: f64,
    pub reorder_point_clear: f64,
    pub phantom_pace: f64,
    pub phantom_hold: f64,
    pub phantom_history_days: u32,
    pub phantom_min_shelf_sales: f64,
    pub warning_confirm_minutes: u32,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    pub webhook_url: String,
    pub webhook_token: String,
    pub webhook_format: String,
    pub routes_file: String,
    pub log: bool,
}

impl std::fmt::Debug for AlertsSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertsSection")
            .field(
                "webhook_url",
                &stocklake_model::notify::webhook_display(&self.webhook_url),
            )
            .field("webhook_token", &redact(&self.webhook_token))
            .field("webhook_format", &self.webhook_format)
            .field("routes_file", &self.routes_file)
            .field("log", &self.log)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    pub api_token: String,
    pub write_token: String,
    pub allowed_hosts: Vec<String>,
    pub max_connections: u64,
    pub header_read_timeout_secs: u64,
}

impl std::fmt::Debug for ServeSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeSection")
            .field("api_token", &redact(&self.api_token))
            .field("write_token", &redact(&self.write_token))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("max_connections", &self.max_connections)
            .field("header_read_timeout_secs", &self.header_read_timeout_secs)
            .finish()
    }
}

fn redact(s: &str) -> &'static str {
    if s.is_empty() { "" } else { "<set>" }
}

/// The resolved settings every command uses.
#[derive(Clone)]
pub struct Settings {
    pub config: Config,
    pub data_dir: PathBuf,
    pub bronze: Location,
    pub silver: Location,
    /// `sqlite://PATH` or `postgres://…`.
    pub gold: String,
    /// Kinesis stream name.
    pub stream: Option<String>,
    /// Where gold is published as Delta tables.
    pub gold_lake: Option<Location>,
    pub listen: SocketAddr,
    pub master_data: Option<PathBuf>,
    pub aws: AwsOptions,
    /// Accepted ingest tokens (from the file, the list and `tokens_file`).
    pub ingest_tokens: Vec<String>,
    /// Where alert changes go: the chain-wide webhook and the routes per store or region.
    pub notify: stocklake_model::notify::NotifyConfig,
    /// Where the configuration file was read from, if any.
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("bronze", &self.bronze)
            .field("silver", &self.silver)
            .field("gold", &redact_url(&self.gold))
            .field("stream", &self.stream)
            .field("gold_lake", &self.gold_lake)
            .field("listen", &self.listen)
            .field("master_data", &self.master_data)
            .field("aws", &self.aws)
            .field(
                "ingest_tokens",
                &format!("{} set", self.ingest_tokens.len()),
            )
            .field("file", &self.file)
            .field("ingest", &self.config.ingest)
            .field("refine", &self.config.refine)
            .field("stock", &self.config.stock)
            .field("alerts", &self.config.alerts)
            .field("serve", &self.config.serve)
            .finish()
    }
}

/// A URL with its password replaced, for logs.
pub use stocklake_model::redact as redact_url;

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

/// Merges `file` over `base`, refusing keys `base` does not have and values of another type.
fn merge_checked(base: &mut Table, file: Table, prefix: &str, origin: &str) -> anyhow::Result<()> {
    for (k, v) in file {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let Some(slot) = base.get_mut(&k) else {
            let known: Vec<&String> = base.keys().collect();
            bail!(
                "{origin}: unknown key `{path}` (known keys here: {})",
                known
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        match (slot, v) {
            (Value::Table(b), Value::Table(f)) => merge_checked(b, f, &path, origin)?,
            (slot @ Value::Float(_), Value::Integer(i)) => *slot = Value::Float(i as f64),
            (slot, v) if std::mem::discriminant(slot) == std::mem::discriminant(&v) => {
                if let (Value::Array(_), Value::Array(items)) = (&slot, &v)
                    && let Some(bad) = items.iter().find(|i| !i.is_str())
                {
                    bail!(
                        "{origin}: `{path}` must be a list of strings, found {}",
                        type_name(bad)
                    );
                }
                *slot = v;
            }
            (slot, v) => bail!(
                "{origin}: `{path}` must be {}, found {}",
                type_name(slot),
                type_name(&v)
            ),
        }
    }
    Ok(())
}

/// Every leaf key path of a table, with its value.
fn leaves(t: &Table, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Table(sub) => leaves(sub, &path, out),
            other => out.push((path, other.clone())),
        }
    }
}

/// The environment variable of a key path.
pub fn env_name(path: &str) -> String {
    format!("STOCKLAKE_{}", path.replace('.', "_").to_ascii_uppercase())
}

fn set_path(t: &mut Table, path: &str, v: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut cur = t;
    for p in parts {
        let next = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        match next {
            Value::Table(sub) => cur = sub,
            _ => return,
        }
    }
    cur.insert(last.to_string(), v);
}

fn parse_env(default: &Value, raw: &str, name: &str) -> anyhow::Result<Value> {
    Ok(match default {
        Value::String(_) => Value::String(raw.to_string()),
        Value::Integer(_) => Value::Integer(
            raw.trim()
                .parse()
                .with_context(|| format!("{name}={raw:?} must be an integer"))?,
        ),
        Value::Float(_) => Value::Float(
            raw.trim()
                .parse()
                .with_context(|| format!("{name}={raw:?} must be a number"))?,
        ),
        Value::Boolean(_) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => bail!("{name}={raw:?} must be true or false"),
        }),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => Value::String(raw.to_string()),
    })
}

/// Reads the environment through `get` (the process environment in production).
pub fn resolve(
    global: &GlobalArgs,
    get: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
) -> anyhow::Result<Settings> {
    let mut table: Table = toml::from_str(DEFAULTS).context("the built-in defaults")?;
    let mut defaults_leaves = Vec::new();
    leaves(&table, "", &mut defaults_leaves);

    // the file
    let explicit = global.config.clone();
    let candidate = explicit
        .clone()
        .unwrap_or_else(|| cwd.join("stocklake.toml"));
    let file = if explicit.is_some() || candidate.exists() {
        let text = std::fs::read_to_string(&candidate).with_context(|| {
            format!("cannot read the configuration file {}", candidate.display())
        })?;
        let parsed: Table =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", candidate.display()))?;
        merge_checked(&mut table, parsed, "", &candidate.display().to_string())?;
        Some(candidate)
    } else {
        None
    };

    // the original design's .env names
    let get_nonempty = |n: &str| get(n).filter(|v| !v.trim().is_empty());
    if let Some(stream) = get_nonempty("KINESIS_STREAM_NAME") {
        set_path(
            &mut table,
            "stream",
            Value::String(format!("kinesis://{stream}")),
        );
    }
    // the original design's buckets, under its S3_PREFIX when set
    let prefix = get_nonempty("S3_PREFIX")
        .map(|p| format!("/{}", p.trim_matches('/')))
        .unwrap_or_default();
    for (var, key) in [
        ("S3_BUCKET_BRONZE", "bronze"),
        ("S3_BUCKET_SILVER", "silver"),
        ("S3_BUCKET_GOLD", "gold_lake"),
    ] {
        if let Some(b) = get_nonempty(var) {
            set_path(&mut table, key, Value::String(format!("s3://{b}{prefix}")));
        }
    }
    if let Some(host) = get_nonempty("POSTGRES_HOST") {
        let user = get_nonempty("POSTGRES_USER").unwrap_or_else(|| "postgres".into());
        let password = get_nonempty("POSTGRES_PASSWORD");
        let port = get_nonempty("POSTGRES_PORT").unwrap_or_else(|| "5432".into());
        let db = get_nonempty("POSTGRES_DB").unwrap_or_else(|| user.clone());
        let auth = match password {
            Some(p) => format!("{}:{}", pct(&user), pct(&p)),
            None => pct(&user),
        };
        set_path(
            &mut table,
            "gold",
            Value::String(format!("postgres://{auth}@{host}:{port}/{db}")),
        );
    }
    // STOCKLAKE_* for every key
    for (path, default) in &defaults_leaves {
        let name = env_name(path);
        if let Some(raw) = get(&name) {
            set_path(&mut table, path, parse_env(default, &raw, &name)?);
        }
    }
    // flags
    let flag = |t: &mut Table, key: &str, v: Option<String>| {
        if let Some(v) = v {
            set_path(t, key, Value::String(v));
        }
    };
    flag(
        &mut table,
        "data_dir",
        global.data_dir.as_ref().map(|p| p.display().to_string()),
    );
    flag(&mut table, "bronze", global.bronze.clone());
    flag(&mut table, "silver", global.silver.clone());
    flag(&mut table, "gold", global.gold.clone());
    flag(&mut table, "stream", global.stream.clone());
    flag(&mut table, "gold_lake", global.gold_lake.clone());
    flag(&mut table, "listen", global.listen.clone());
    if global.insecure_listen {
        set_path(&mut table, "insecure_listen", Value::Boolean(true));
    }
    flag(
        &mut table,
        "master_data",
        global.master_data.as_ref().map(|p| p.display().to_string()),
    );

    let config: Config = Value::Table(table)
        .try_into()
        .map_err(|e| anyhow!("configuration: {e}"))?;
    settle(config, file, cwd, get)
}

/// A bearer token a client can present: visible ASCII without spaces (RFC 6750's `b64token`
/// and the rest of what a header carries verbatim).
fn check_token(t: &str) -> Result<(), &'static str> {
    if t.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err("may hold only visible ASCII characters, no spaces")
    }
}

impl Settings {
    /// Refuses to serve a non-loopback address without tokens for what is served (`api`: the
    /// read API and dashboard beside ingest), unless `insecure_listen` says so.
    pub fn check_exposure(&self, api: bool) -> anyhow::Result<()> {
        if self.listen.ip().is_loopback() || self.config.insecure_listen {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.ingest_tokens.is_empty() {
            missing.push("`ingest.tokens` (STOCKLAKE_INGEST_TOKENS) for POST /v1/events");
        }
        if api && self.config.serve.api_token.is_empty() {
            missing.push("`serve.api_token` (STOCKLAKE_SERVE_API_TOKEN) for the API and dashboard");
        }
        if missing.is_empty() {
            return Ok(());
        }
        bail!(
            "refusing to listen on {} without tokens: set {}, or pass --insecure-listen (insecure_listen = true) to serve it open on purpose; see docs/security.md",
            self.listen,
            missing.join(" and ")
        )
    }
}

/// Percent-encodes a URL user-info part.
fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn settle(
    config: Config,
    file: Option<PathBuf>,
    cwd: &Path,
    get: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Settings> {
    let places = places(&config, cwd)?;
    let listen: SocketAddr = config.listen.parse().map_err(|e| {
        anyhow!(
            "`listen` = {:?} is not an address like 127.0.0.1:8080: {e}",
            config.listen
        )
    })?;
    let master_data = (!config.master_data.is_empty()).then(|| {
        let p = PathBuf::from(&config.master_data);
        if p.is_absolute() { p } else { cwd.join(p) }
    });
    if !matches!(config.log_format.as_str(), "text" | "json") {
        bail!("`log_format` = {:?}: use text or json", config.log_format);
    }
    let aws = aws_options(&config, get);
    let ingest_tokens = ingest_tokens(&config)?;
    let notify = notify_config(&config.alerts)?;
    check_stock(&config.stock)?;
    check_limits(&config)?;
    for (key, token) in ingest_tokens
        .iter()
        .map(|t| ("ingest.tokens", t.as_str()))
        .chain(
            (!config.serve.api_token.is_empty())
                .then_some(("serve.api_token", config.serve.api_token.as_str())),
        )
        .chain(
            (!config.serve.write_token.is_empty())
                .then_some(("serve.write_token", config.serve.write_token.as_str())),
        )
    {
        if let Err(why) = check_token(token) {
            bail!("`{key}`: a token {why}");
        }
    }
    Ok(Settings {
        data_dir: places.data_dir,
        bronze: places.bronze,
        silver: places.silver,
        gold: places.gold,
        stream: places.stream,
        gold_lake: places.gold_lake,
        listen,
        master_data,
        aws,
        ingest_tokens,
        notify,
        file,
        config,
    })
}

/// The `[alerts]` delivery settings: the chain-wide webhook, its format, and the routes file.
fn notify_config(a: &AlertsSection) -> anyhow::Result<stocklake_model::notify::NotifyConfig> {
    use stocklake_model::notify::{Webhook, WebhookFormat, parse_routes};
    let Some(format) = WebhookFormat::parse(&a.webhook_format) else {
        bail!(
            "`alerts.webhook_format` = {:?}: use {}",
            a.webhook_format,
            WebhookFormat::NAMES
        );
    };
    let routes = if a.routes_file.is_empty() {
        Vec::new()
    } else {
        let text = std::fs::read_to_string(&a.routes_file)
            .with_context(|| format!("`alerts.routes_file`: cannot read {}", a.routes_file))?;
        parse_routes(&text)
            .map_err(|why| anyhow::anyhow!("`alerts.routes_file` ({}): {why}", a.routes_file))?
    };
    Ok(stocklake_model::notify::NotifyConfig {
        webhook: (!a.webhook_url.is_empty()).then(|| Webhook {
            url: a.webhook_url.clone(),
            token: (!a.webhook_token.is_empty()).then(|| a.webhook_token.clone()),
            format,
        }),
        routes,
        log: a.log,
    })
}

/// Where the data lives.
struct Places {
    data_dir: PathBuf,
    bronze: Location,
    silver: Location,
    gold: String,
    stream: Option<String>,
    gold_lake: Option<Location>,
}

fn places(config: &Config, cwd: &Path) -> anyhow::Result<Places> {
    let joined = if config.data_dir.is_absolute() {
        config.data_dir.clone()
    } else {
        cwd.join(&config.data_dir)
    };
    let data_dir = match Location::parse(&joined.display().to_string()) {
        Ok(Location::Local(p)) => p,
        _ => bail!(
            "`data_dir` = {:?} is not a local directory",
            config.data_dir
        ),
    };
    let location = |key: &str, value: &str, default: PathBuf| -> anyhow::Result<Location> {
        if value.is_empty() {
            Ok(Location::Local(default))
        } else {
            Location::parse(value).map_err(|e| anyhow!("`{key}`: {e}"))
        }
    };
    let bronze = location("bronze", &config.bronze, data_dir.join("bronze"))?;
    let silver = location("silver", &config.silver, data_dir.join("silver"))?;
    let gold = if config.gold.is_empty() {
        format!("sqlite://{}", data_dir.join("gold.db").display())
    } else if config.gold.starts_with("sqlite://")
        || config.gold.starts_with("postgres://")
        || config.gold.starts_with("postgresql://")
    {
        config.gold.clone()
    } else {
        bail!(
            "`gold` = {:?}: use sqlite://PATH or postgres://user@host:port/db",
            config.gold
        );
    };
    let stream = if config.stream.is_empty() {
        None
    } else {
        Some(
            stocklake_storage::aws::parse_stream_url(&config.stream)
                .map_err(|e| anyhow!("`stream`: {e}"))?,
        )
    };
    let gold_lake = if config.gold_lake.is_empty() {
        None
    } else {
        Some(Location::parse(&config.gold_lake).map_err(|e| anyhow!("`gold_lake`: {e}"))?)
    };
    Ok(Places {
        data_dir,
        bronze,
        silver,
        gold,
        stream,
        gold_lake,
    })
}

/// AWS settings: the SDK's environment, then the `[aws]` section.
fn aws_options(config: &Config, get: &dyn Fn(&str) -> Option<String>) -> AwsOptions {
    let mut aws = AwsOptions {
        endpoint_url: get("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()),
        region: get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .filter(|v| !v.is_empty()),
        access_key_id: get("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty()),
        secret_access_key: get("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty()),
        session_token: get("AWS_SESSION_TOKEN").filter(|v| !v.is_empty()),
        allow_http: get("AWS_ALLOW_HTTP").map(|v| v == "true" || v == "1"),
    };
    if !config.aws.endpoint_url.is_empty() {
        aws.endpoint_url = Some(config.aws.endpoint_url.clone());
    }
    if !config.aws.region.is_empty() {
        aws.region = Some(config.aws.region.clone());
    }
    aws
}

/// The ingest tokens: listed, and read from `ingest.tokens_file` (one a line, `#` comments).
fn ingest_tokens(config: &Config) -> anyhow::Result<Vec<String>> {
    let mut tokens: Vec<String> = config
        .ingest
        .tokens
        .iter()
        .filter(|t| !t.is_empty())
        .cloned()
        .collect();
    if !config.ingest.tokens_file.is_empty() {
        let text = std::fs::read_to_string(&config.ingest.tokens_file).with_context(|| {
            format!(
                "`ingest.tokens_file`: cannot read {}",
                config.ingest.tokens_file
            )
        })?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    Ok(tokens)
}

/// The `[stock]` settings within their ranges.
fn check_stock(s: &StockSection) -> anyhow::Result<()> {
    if !(0.5..1.0).contains(&s.default_service_level) {
        bail!(
            "`stock.default_service_level` = {} must be in [0.5, 1)",
            s.default_service_level
        );
    }
    if !(s.phantom_probability > 0.0 && s.phantom_probability < 0.5) {
        bail!(
            "`stock.phantom_probability` = {} must be in (0, 0.5)",
            s.phantom_probability
        );
    }
    if !(s.order_risk > 0.0 && s.order_risk <= 1.0) {
        bail!("`stock.order_risk` = {} must be in (0, 1]", s.order_risk);
    }
    if s.demand_half_life_days <= 0.0 || s.overstock_days <= 0.0 {
        bail!("`stock.demand_half_life_days` and `stock.overstock_days` must be positive");
    }
    for (key, v) in [
        ("stock.low_cover_share", s.low_cover_share),
        ("stock.low_cover_share_held", s.low_cover_share_held),
        ("stock.order_risk_hold_share", s.order_risk_hold_share),
        ("stock.phantom_pace", s.phantom_pace),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            bail!("`{key}` = {v} must be in (0, 1]");
        }
    }
    for (key, v) in [
        ("stock.safety_stock_clear", s.safety_stock_clear),
        ("stock.reorder_point_clear", s.reorder_point_clear),
        ("stock.phantom_hold", s.phantom_hold),
    ] {
        if !(1.0..=100.0).contains(&v) {
            bail!("`{key}` = {v} must be at least 1 (a margin to clear by) and at most 100");
        }
    }
    if s.phantom_min_sales_per_day <= 0.0 || s.phantom_min_shelf_sales < 0.0 {
        bail!(
            "`stock.phantom_min_sales_per_day` must be positive and `stock.phantom_min_shelf_sales` not negative"
        );
    }
    if s.warning_confirm_minutes > 24 * 60 {
        bail!(
            "`stock.warning_confirm_minutes` = {} must be at most a day (1440)",
            s.warning_confirm_minutes
        );
    }
    Ok(())
}

/// The limits of ingest, serve and refine: positive, and consistent with each other.
fn check_limits(config: &Config) -> anyhow::Result<()> {
    if config.refine.dedup_window_days == 0 {
        bail!("`refine.dedup_window_days` must be at least 1");
    }
    if config.ingest.flush_interval_ms == 0 || config.ingest.max_body_bytes == 0 {
        bail!("`ingest.flush_interval_ms` and `ingest.max_body_bytes` must be positive");
    }
    for (key, value) in [
        (
            "ingest.max_records_per_request",
            config.ingest.max_records_per_request,
        ),
        (
            "ingest.max_inflight_body_bytes",
            config.ingest.max_inflight_body_bytes,
        ),
        (
            "ingest.body_read_timeout_secs",
            config.ingest.body_read_timeout_secs,
        ),
        ("serve.max_connections", config.serve.max_connections),
        (
            "serve.header_read_timeout_secs",
            config.serve.header_read_timeout_secs,
        ),
    ] {
        if value == 0 {
            bail!("`{key}` must be positive");
        }
    }
    if config.ingest.max_inflight_body_bytes < config.ingest.max_body_bytes {
        bail!(
            "`ingest.max_inflight_body_bytes` = {} must be at least `ingest.max_body_bytes` = {}: a body of the largest size could never be read",
            config.ingest.max_inflight_body_bytes,
            config.ingest.max_body_bytes
        );
    }
    Ok(())
}

/// Settings from the process environment and the working directory.
pub fn load(global: &GlobalArgs) -> anyhow::Result<Settings> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    resolve(global, &|n| std::env::var(n).ok(), &cwd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_resolve_to_the_embedded_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = resolve(&GlobalArgs::default(), &with_env(&[]), dir.path()).expect("resolve");
        assert_eq!(
            s.bronze,
            Location::Local(dir.path().join("./data").join("bronze"))
        );
        assert!(s.gold.starts_with("sqlite://") && s.gold.ends_with("gold.db"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.stream, None);
        assert_eq!(s.config.ingest.flush_interval_ms, 1000);
        assert!(s.file.is_none());
    }

    #[test]
    fn layers_in_order_file_env_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("stocklake.toml"),
            "listen = \"0.0.0.0:9000\"\nstream = \"kinesis://from-file\"\n[ingest]\nflush_interval_ms = 250\nshards = 4\n[stock]\noverstock_days = 30\n",
        )
        .expect("write");
        let env = with_env(&[
            ("STOCKLAKE_INGEST_SHARDS", "8"),
            ("STOCKLAKE_INGEST_TOKENS", "a, b"),
            ("STOCKLAKE_STREAM", "kinesis://from-env"),
        ]);
        let flags = GlobalArgs {
            listen: Some("127.0.0.1:7000".into()),
            ..GlobalArgs::default()
        };
        let s = resolve(&flags, &env, dir.path()).expect("resolve");
        assert_eq!(s.config.ingest.flush_interval_ms, 250, "file over defaults");
        assert_eq!(s.config.ingest.shards, 8, "env over file");
        assert_eq!(s.stream.as_deref(), Some("from-env"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:7000", "flags over all");
        assert_eq!(s.ingest_tokens, vec!["a", "b"]);
        assert!(
            (s.config.stock.overstock_days - 30.0).abs() < 1e-9,
            "an integer for a number"
        );
        assert!(s.file.is_some());
    }

    #[test]
    fn unknown_keys_and_wrong_types_fail_with_the_key_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stocklake.toml");
        for (text, needle) in [
            (
                "[ingest]\nflush_intervall_ms = 5\n",
                "unknown key `ingest.flush_intervall_ms`",
            ),
            ("colour = \"blue\"\n", "unknown key `colour`"),
            (
                "[ingest]\nflush_bytes = \"big\"\n",
                "`ingest.flush_bytes` must be an integer, found a string",
            ),
            (
                "[ingest]\ntokens = [1]\n",
                "`ingest.tokens` must be a list of strings",
            ),
            ("listen = \"nowhere\"\n", "`listen`"),
            ("gold = \"mysql://x\"\n", "`gold`"),
            (
                "[stock]\ndefault_service_level = 1.5\n",
                "`stock.default_service_level`",
            ),
            ("this is not toml", "stocklake.toml"),
            (
                "[alerts]\nwebhook_format = \"xml\"\n",
                "`alerts.webhook_format` = \"xml\": use json, slack",
            ),
            (
                "[alerts]\nroutes_file = \"/nonexistent/routes.csv\"\n",
                "`alerts.routes_file`: cannot read /nonexistent/routes.csv",
            ),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = resolve(&GlobalArgs::default(), &with_env(&[]), dir.path())
                .expect_err(text)
                .to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        // a routes file with a wrong row: its line named
        let routes = dir.path().join("routes.csv");
        std::fs::write(
            &routes,
            "store_id,region,format,url,token\nST-1,,sms,https://x.example.com,\n",
        )
        .expect("write");
        std::fs::write(
            &path,
            format!(
                "[alerts]\nroutes_file = {:?}\n",
                routes.display().to_string()
            ),
        )
        .expect("write");
        let err = resolve(&GlobalArgs::default(), &with_env(&[]), dir.path())
            .expect_err("a wrong route")
            .to_string();
        assert!(
            err.contains("`alerts.routes_file`") && err.contains("line 2: format \"sms\""),
            "{err}"
        );
        std::fs::write(
            &routes,
            "store_id,region,format,url,token\nST-1,,slack,https://x.example.com,\n",
        )
        .expect("write");
        let s = resolve(&GlobalArgs::default(), &with_env(&[]), dir.path()).expect("routes");
        assert_eq!(s.notify.routes.len(), 1);
        std::fs::remove_file(&path).expect("rm");
        let err = resolve(
            &GlobalArgs::default(),
            &with_env(&[("STOCKLAKE_INGEST_SHARDS", "many")]),
            dir.path(),
        )
        .expect_err("bad env")
        .to_string();
        assert!(err.contains("STOCKLAKE_INGEST_SHARDS"), "{err}");
    }

    #[test]
    fn the_original_env_names_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = with_env(&[
            ("KINESIS_STREAM_NAME", "supermarket-sales-stream"),
            ("S3_BUCKET_BRONZE", "raw-bucket"),
            ("S3_BUCKET_SILVER", "clean-bucket"),
            ("POSTGRES_HOST", "db"),
            ("POSTGRES_PORT", "5433"),
            ("POSTGRES_USER", "etl"),
            ("POSTGRES_PASSWORD", "p@ss word"),
            ("POSTGRES_DB", "retail"),
            ("AWS_ENDPOINT_URL", "http://localstack:4566"),
        ]);
        let s = resolve(&GlobalArgs::default(), &env, dir.path()).expect("resolve");
        assert_eq!(s.stream.as_deref(), Some("supermarket-sales-stream"));
        assert_eq!(s.bronze.url(), "s3://raw-bucket");
        assert_eq!(s.silver.url(), "s3://clean-bucket");
        assert_eq!(s.gold, "postgres://etl:p%40ss%20word@db:5433/retail");
        assert_eq!(
            s.aws.endpoint_url.as_deref(),
            Some("http://localstack:4566")
        );
        assert!(s.gold_lake.is_none(), "no gold bucket, no gold lake");
        // S3_BUCKET_GOLD is the gold lake; S3_PREFIX a prefix under every bucket
        let env = with_env(&[
            ("S3_BUCKET_BRONZE", "raw-bucket"),
            ("S3_BUCKET_SILVER", "clean-bucket"),
            ("S3_BUCKET_GOLD", "gold-bucket"),
            ("S3_PREFIX", "/chain-7/"),
        ]);
        let s = resolve(&GlobalArgs::default(), &env, dir.path()).expect("resolve");
        assert_eq!(s.bronze.url(), "s3://raw-bucket/chain-7");
        assert_eq!(s.silver.url(), "s3://clean-bucket/chain-7");
        assert_eq!(
            s.gold_lake.as_ref().map(|l| l.url()),
            Some("s3://gold-bucket/chain-7".to_string())
        );
        // a flag wins, as everywhere
        let flags = GlobalArgs {
            gold_lake: Some("file:///tmp/lake".into()),
            ..GlobalArgs::default()
        };
        let s = resolve(&flags, &env, dir.path()).expect("resolve");
        assert_eq!(
            s.gold_lake.as_ref().map(|l| l.url()),
            Some("file:///tmp/lake".to_string())
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = with_env(&[
            ("STOCKLAKE_INGEST_TOKENS", "tok-123"),
            ("STOCKLAKE_SERVE_API_TOKEN", "api-456"),
            ("STOCKLAKE_SERVE_WRITE_TOKEN", "write-012"),
            ("STOCKLAKE_ALERTS_WEBHOOK_TOKEN", "hook-789"),
        ]);
        let s = resolve(&GlobalArgs::default(), &env, dir.path()).expect("resolve");
        let text = format!("{s:?}");
        let with_pw = resolve(
            &GlobalArgs {
                gold: Some("postgres://etl:hunter2@db:5432/x".into()),
                ..GlobalArgs::default()
            },
            &with_env(&[]),
            dir.path(),
        )
        .expect("resolve");
        assert!(!format!("{with_pw:?}").contains("hunter2"));
        for secret in ["tok-123", "api-456", "write-012", "hook-789"] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn the_configuration_reference_lists_every_key() {
        let doc = include_str!("../../../docs/configuration.md");
        let table: Table = toml::from_str(DEFAULTS).expect("defaults parse");
        let mut keys = Vec::new();
        leaves(&table, "", &mut keys);
        assert!(keys.len() > 30, "{}", keys.len());
        for (path, default) in keys {
            let row = format!("| `{path}` | `{default}` | `{}` |", env_name(&path));
            assert!(
                doc.contains(&row),
                "docs/configuration.md lacks (or has another default for) {path}: expected a row starting {row}"
            );
        }
    }
}
