use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use stocklake_testkit::AwsOptions;

/// The stocklake binary with a clean environment: no inherited STOCKLAKE_* or AWS settings,
/// explicit emulator credentials when given, and never the instance-metadata address.
pub fn stocklake(dir: &Path, aws: Option<&AwsOptions>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stocklake"));
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("STOCKLAKE_")
            || k.starts_with("AWS_")
            || k.starts_with("POSTGRES_")
            || k.starts_with("S3_BUCKET_")
            || k == "KINESIS_STREAM_NAME"
        {
            c.env_remove(k);
        }
    }
    c.env("AWS_EC2_METADATA_DISABLED", "true");
    c.env("STOCKLAKE_LOG", "warn");
    if let Some(a) = aws {
        if let Some(e) = &a.endpoint_url {
            c.env("AWS_ENDPOINT_URL", e);
        }
        c.env("AWS_REGION", a.region_or_default());
        c.env(
            "AWS_ACCESS_KEY_ID",
            a.access_key_id.clone().unwrap_or_default(),
        );
        c.env(
            "AWS_SECRET_ACCESS_KEY",
            a.secret_access_key.clone().unwrap_or_default(),
        );
        c.env("AWS_ALLOW_HTTP", "true");
    } else {
        c.env("AWS_ACCESS_KEY_ID", "unused")
            .env("AWS_SECRET_ACCESS_KEY", "unused");
    }
    c
}

/// Runs to completion; panics with both streams when it fails.
pub fn ok(mut c: Command) -> Output {
    let out = c.output().expect("run stocklake");
    assert!(
        out.status.success(),
        "stocklake failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stocklake")
}

/// SIGKILL: no chance to flush or clean up.
pub fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-9")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[allow(dead_code)]
pub fn wait_http(url: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not come up");
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every bronze record under a local bronze root: (partition, sequence) -> payload.
pub async fn local_bronze(root: &Path) -> std::collections::BTreeMap<(String, String), Vec<u8>> {
    use stocklake_storage::bronze::parse_line;
    use stocklake_storage::{Location, list_bronze, read_bronze};
    let loc = Location::Local(root.to_path_buf());
    let store = loc.object_store(&AwsOptions::default()).expect("store");
    let mut out = std::collections::BTreeMap::new();
    for o in list_bronze(store.as_ref(), None).await.expect("list") {
        let text = read_bronze(store.as_ref(), &o.name).await.expect("read");
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let l = parse_line(line).expect("line");
            let key = (l.partition.to_string(), l.sequence.to_string());
            let payload = l.payload_bytes().expect("payload").into_owned();
            assert!(
                out.insert(key, payload).is_none(),
                "a record twice in bronze"
            );
        }
    }
    out
}
