//! The shipped deployment files name only real things: every Compose service, port, command
//! and variable exists, and stocklake runs on the `.env.example` values (moto standing in for
//! LocalStack, the test PostgreSQL for the compose one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml_ng::Value;

use crate::common::{ok, repo_root, stocklake};

/// `KEY=VALUE` lines of a dotenv file, in order; comments and blank lines skipped.
fn dotenv(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{}:{}: not KEY=VALUE: {line}", path.display(), i + 1));
        assert!(
            k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{}:{}: odd variable name {k:?}",
            path.display(),
            i + 1
        );
        assert!(
            m.insert(k.to_string(), v.to_string()).is_none(),
            "{k} twice in {}",
            path.display()
        );
    }
    m
}

/// Compose's variable interpolation: `${X}`, `${X:-default}`, `${X-default}`, `$$`.
/// Every variable must be defined by `env` or carry a default.
fn interpolate(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').ok_or("unclosed ${")?;
            let expr = &r[..end];
            rest = &r[end + 1..];
            let (name, default, empty_is_unset) = if let Some((n, d)) = expr.split_once(":-") {
                (n, Some(d), true)
            } else if let Some((n, d)) = expr.split_once('-') {
                (n, Some(d), false)
            } else {
                (expr, None, false)
            };
            let value = env.get(name).filter(|v| !(empty_is_unset && v.is_empty()));
            match (value, default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "the compose file uses ${{{name}}}, which .env.example does not define"
                    ));
                }
            }
        } else {
            return Err(format!("bare $ before {:?}", &rest[..rest.len().min(10)]));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(xs) => xs
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("not a string: {other:?}"),
            })
            .collect(),
        Value::Null => vec![],
        other => panic!("not a string or list: {other:?}"),
    }
}

/// The container-side ports a service publishes ("HOST:CONTAINER" or "CONTAINER").
fn container_ports(service: &Value) -> Vec<u16> {
    strings(&service["ports"])
        .iter()
        .map(|p| {
            p.rsplit(':')
                .next()
                .and_then(|c| c.split('/').next())
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("odd port mapping {p:?}"))
        })
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

fn host_of(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split([':', '/']).next().unwrap_or(rest)
}

/// Every environment variable stocklake reads: the configuration reference's column, the
/// variables its flags name in `--help`, the original design's names and the AWS SDK's.
fn known_variables() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = [
        // docs/contract.md §7: the original design's names
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "KINESIS_STREAM_NAME",
        "S3_BUCKET_BRONZE",
        "S3_BUCKET_SILVER",
        "S3_BUCKET_GOLD",
        "S3_PREFIX",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        // read by the AWS SDK and object_store
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ALLOW_HTTP",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let reference = std::fs::read_to_string(repo_root().join("docs/configuration.md"))
        .expect("docs/configuration.md");
    for line in reference.lines().filter(|l| l.starts_with("| `")) {
        if let Some(env) = line.split('|').nth(3) {
            let env = env.trim().trim_matches('`');
            if env.starts_with("STOCKLAKE_") {
                known.insert(env.to_string());
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = stocklake(dir.path(), None);
    c.arg("--help");
    let help = ok(c).stdout;
    let help = String::from_utf8_lossy(&help);
    for part in help.split("[env: ").skip(1) {
        if let Some(name) = part.split(['=', ']']).next() {
            known.insert(name.to_string());
        }
    }
    known
}

#[test]
fn the_compose_file_names_only_real_services_ports_commands_and_variables() {
    let root = repo_root();
    let deploy = root.join("deploy");
    let env = dotenv(&root.join(".env.example"));
    let known = known_variables();
    for name in env.keys() {
        assert!(
            known.contains(name),
            ".env.example sets {name}, which stocklake does not read"
        );
    }

    let raw = std::fs::read_to_string(deploy.join("docker-compose.yml")).expect("compose file");
    let text = interpolate(&raw, &env).unwrap_or_else(|e| panic!("{e}"));
    let mut doc: Value = serde_yaml_ng::from_str(&text).expect("compose file is YAML");
    doc.apply_merge().expect("merge keys");
    let services = doc["services"].as_mapping().expect("services");
    let names: BTreeSet<String> = services
        .keys()
        .map(|k| k.as_str().expect("service name").to_string())
        .collect();
    for required in ["localstack", "postgres", "init", "stocklake"] {
        assert!(names.contains(required), "no {required} service");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut stocklake_services = 0;
    for (name, svc) in services {
        let name = name.as_str().expect("name");
        // depends_on: a list or a map of service → condition
        let deps: Vec<String> = match &svc["depends_on"] {
            Value::Mapping(m) => m
                .iter()
                .map(|(k, v)| {
                    let cond = v["condition"].as_str().unwrap_or("service_started");
                    assert!(
                        matches!(
                            cond,
                            "service_started"
                                | "service_healthy"
                                | "service_completed_successfully"
                        ),
                        "{name}: unknown condition {cond}"
                    );
                    if cond == "service_healthy" {
                        let dep = k.as_str().expect("dep");
                        assert!(
                            !services[dep]["healthcheck"].is_null()
                                || !services[dep]["build"].is_null(),
                            "{name} waits for {dep} to be healthy, but {dep} has no health check"
                        );
                    }
                    k.as_str().expect("dep").to_string()
                })
                .collect(),
            other => strings(other),
        };
        for d in deps {
            assert!(names.contains(&d), "{name} depends on unknown service {d}");
        }
        if let Some(build) = svc.get("build") {
            let context = deploy.join(build["context"].as_str().expect("build.context"));
            assert!(context.is_dir(), "{name}: no build context {context:?}");
            let dockerfile = context.join(build["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert!(dockerfile.is_file(), "{name}: no Dockerfile {dockerfile:?}");
            for f in strings(&svc["env_file"]) {
                let example = deploy.join(format!("{f}.example"));
                assert!(
                    example.is_file(),
                    "{name}: env_file {f} has no {example:?} to copy it from"
                );
            }
            // the command must parse: `stocklake <command> --help` fails on any unknown
            // subcommand, flag or bad value before it
            let command = strings(&svc["command"]);
            assert!(!command.is_empty(), "{name}: no command");
            let out = stocklake(dir.path(), None)
                .args(&command)
                .arg("--help")
                .output()
                .expect("run stocklake");
            assert!(
                out.status.success(),
                "{name}: `stocklake {}` does not parse: {}",
                command.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            stocklake_services += 1;
        }
        // a bind mount's host side exists in the repository (named volumes are declared)
        for v in strings(&svc["volumes"]) {
            let host = v.split(':').next().unwrap_or_default();
            if host.starts_with('.') {
                assert!(
                    deploy.join(host).exists(),
                    "{name} mounts {host}, which is not there"
                );
            } else {
                assert!(
                    doc["volumes"]
                        .as_mapping()
                        .is_some_and(|m| m.contains_key(host)),
                    "{name} uses the volume {host}, which is not declared"
                );
            }
        }
        for (k, _) in svc["environment"].as_mapping().into_iter().flatten() {
            let k = k.as_str().expect("variable");
            assert!(
                name != "stocklake" || known.contains(k),
                "{name} sets {k}, which stocklake does not read"
            );
        }
    }
    assert!(
        stocklake_services >= 2,
        "the stocklake image runs init and run"
    );

    // the addresses in .env.example are the services of the compose file
    let endpoint = &env["AWS_ENDPOINT_URL"];
    assert_eq!(host_of(endpoint), "localstack");
    assert!(
        container_ports(&services["localstack"]).contains(&port_of(endpoint)),
        "AWS_ENDPOINT_URL {endpoint} is not a port LocalStack publishes"
    );
    let localstack_services = services["localstack"]["environment"]["SERVICES"]
        .as_str()
        .expect("SERVICES");
    for s in ["s3", "kinesis"] {
        assert!(localstack_services.contains(s), "LocalStack without {s}");
    }
    assert_eq!(env["POSTGRES_HOST"], "postgres");
    let pg_port: u16 = env["POSTGRES_PORT"].parse().expect("POSTGRES_PORT");
    assert!(container_ports(&services["postgres"]).contains(&pg_port));
    let listen = port_of(&env["STOCKLAKE_LISTEN"]);
    assert!(
        container_ports(&services["stocklake"]).contains(&listen),
        "stocklake listens on {listen} but the compose file publishes {:?}",
        container_ports(&services["stocklake"])
    );
    assert_eq!(strings(&services["init"]["command"]), ["init"]);
    assert_eq!(strings(&services["stocklake"]["command"]), ["run"]);
    let check = strings(&services["stocklake"]["healthcheck"]["test"]).join(" ");
    assert!(
        check.contains(&format!("127.0.0.1:{listen}/readyz"))
            || check.contains(&format!("127.0.0.1:{listen}/healthz")),
        "the health check {check:?} must ask stocklake's own probe"
    );
    assert_eq!(
        services["stocklake"]["depends_on"]["init"]["condition"].as_str(),
        Some("service_completed_successfully"),
        "stocklake starts after init"
    );

    // the image: multi-stage, non-root, a health check on the published port
    let dockerfile = std::fs::read_to_string(deploy.join("Dockerfile")).expect("deploy/Dockerfile");
    let froms = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(froms >= 2, "the Dockerfile is not multi-stage");
    let last_stage = dockerfile.rsplit("\nFROM ").next().expect("stage");
    let user = last_stage
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(!matches!(user.trim(), "root" | "0"), "runs as root");
    assert!(last_stage.contains(&format!("EXPOSE {listen}")));
    assert!(last_stage.contains("HEALTHCHECK"));
    assert!(last_stage.contains("ENTRYPOINT [\"stocklake\"]"));
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == ".env"),
        "secrets in .env must stay out of the build context"
    );
}

#[test]
fn interpolation_follows_compose() {
    let env: BTreeMap<String, String> =
        [("A".to_string(), "1".to_string()), ("E".into(), "".into())]
            .into_iter()
            .collect();
    assert_eq!(interpolate("x${A}y", &env).as_deref(), Ok("x1y"));
    assert_eq!(interpolate("${B:-two}", &env).as_deref(), Ok("two"));
    assert_eq!(interpolate("${E:-two}", &env).as_deref(), Ok("two"));
    assert_eq!(interpolate("${E-two}", &env).as_deref(), Ok(""));
    assert_eq!(interpolate("$${A}", &env).as_deref(), Ok("${A}"));
    assert!(interpolate("${B}", &env).is_err());
}

/// stocklake with the settings of `.env.example`, as the compose services get them, against
/// moto in LocalStack's place: catalog, init (twice), the simulated tills on Kinesis, then
/// each stage once. Only what must differ on this machine is changed: the endpoint, the
/// database's address, paths, and names made unique so that tests may run in parallel.
#[tokio::test(flavor = "multi_thread")]
async fn stocklake_runs_on_the_env_example_values() {
    let Some(moto) = stocklake_testkit::moto() else {
        return;
    };
    let Some(db) = stocklake_testkit::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = dotenv(&repo_root().join(".env.example"));
    let suffix = stocklake_testkit::unique("env");
    env.insert("AWS_ENDPOINT_URL".into(), moto);
    for k in [
        "S3_BUCKET_BRONZE",
        "S3_BUCKET_SILVER",
        "S3_BUCKET_GOLD",
        "KINESIS_STREAM_NAME",
    ] {
        let v = format!("{}-{suffix}", env[k]);
        env.insert(k.into(), v);
    }
    // postgres://postgres@127.0.0.1:5432/<db>
    let after = db.url.split("://").nth(1).expect("url");
    let (user, hostpart) = after.split_once('@').expect("user@host");
    let (hostport, dbname) = hostpart.split_once('/').expect("host/db");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    env.insert("POSTGRES_HOST".into(), host.into());
    env.insert("POSTGRES_PORT".into(), port.into());
    env.insert("POSTGRES_USER".into(), user.into());
    env.insert("POSTGRES_DB".into(), dbname.into());
    let master = dir.path().join("master");
    env.insert("STOCKLAKE_MASTER_DATA".into(), master.display().to_string());
    env.insert(
        "STOCKLAKE_LISTEN".into(),
        format!("127.0.0.1:{}", crate::common::free_port()),
    );
    env.insert(
        "STOCKLAKE_DATA_DIR".into(),
        dir.path().join("data").display().to_string(),
    );

    let run = |args: &[&str]| {
        let mut c = stocklake(dir.path(), None);
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .envs(&env)
            .args(args);
        let out = ok(c);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let sim = [
        "--seed", "4", "--stores", "2", "--skus", "30", "--days", "2",
    ];

    // the compose file's catalog and init services
    let mut catalog = sim.to_vec();
    catalog.extend([
        "--catalog-out",
        master.to_str().expect("path"),
        "--to",
        "file:/dev/null",
    ]);
    run(&[&["simulate"][..], &catalog].concat());
    assert!(master.join("products.csv").is_file() && master.join("stores.csv").is_file());
    let (first, _) = run(&["init"]);
    assert!(first.contains("created"), "init created nothing:\n{first}");
    let (second, _) = run(&["init"]);
    assert!(
        !second.contains("created"),
        "a second init must find everything in place:\n{second}"
    );
    let stream = format!("kinesis://{}", env["KINESIS_STREAM_NAME"]);
    for needle in [
        format!("s3://{}", env["S3_BUCKET_BRONZE"]),
        format!("s3://{}", env["S3_BUCKET_SILVER"]),
        format!("s3://{}", env["S3_BUCKET_GOLD"]),
        stream.clone(),
        "***".to_string(),
    ] {
        assert!(
            second.contains(&needle),
            "init does not mention {needle}:\n{second}"
        );
    }
    assert!(
        !second.contains(&env["POSTGRES_PASSWORD"]),
        "the database password is printed:\n{second}"
    );

    // the simulator service, unpaced, then each stage once
    let mut tills = sim.to_vec();
    tills.extend(["--to", &stream]);
    run(&[&["simulate"][..], &tills].concat());
    run(&["ingest", "--once"]);
    run(&["refine", "--once"]);
    run(&["model", "--once"]);
    let (status, _) = run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    let text = v.to_string();
    assert!(
        !text.contains(&env["POSTGRES_PASSWORD"]),
        "status shows the password"
    );
    let (alerts, _) = run(&["alerts", "--all", "--json", "--limit", "5"]);
    serde_json::from_str::<serde_json::Value>(&alerts).expect("alerts JSON");
    assert!(
        v["bronze"]["objects"].as_u64().unwrap_or(0) > 0,
        "nothing in bronze: {status}"
    );
    assert!(
        v["bronze"]["location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&format!("s3://{}", env["S3_BUCKET_BRONZE"]))),
        "bronze is not the bucket of S3_BUCKET_BRONZE: {status}"
    );
    let counts = &v["gold"]["counts"];
    for k in ["sales_lines", "stock_levels", "stores", "products"] {
        assert!(
            counts[k].as_i64().unwrap_or(0) > 0,
            "gold has no {k}: {status}"
        );
    }
    assert_eq!(counts["stores"].as_i64(), Some(2));
    assert_eq!(v["silver"]["backlog_objects"].as_u64(), Some(0), "{status}");
    // S3_BUCKET_GOLD names the gold lake: gold published as Delta tables there, which the
    // Python deltalake package and Polars read as the database holds it
    let lake = format!("s3://{}", env["S3_BUCKET_GOLD"]);
    assert_eq!(v["lake"]["root"].as_str(), Some(lake.as_str()), "{status}");
    assert!(
        v["lake"]["tables"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["up_to_date"] == true)),
        "{status}"
    );
    let aws = stocklake_testkit::AwsOptions {
        access_key_id: Some(env["AWS_ACCESS_KEY_ID"].clone()),
        secret_access_key: Some(env["AWS_SECRET_ACCESS_KEY"].clone()),
        ..stocklake_testkit::AwsOptions::emulator(&env["AWS_ENDPOINT_URL"])
    };
    crate::lake::assert_lake_is_gold(&lake, &db.url, Some(&aws)).await;
}
