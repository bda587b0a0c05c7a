//! Storage roots as URLs: `file://…` (the embedded default) or `s3://bucket/prefix`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

/// AWS settings for S3 and Kinesis. Anything not set here is read from the environment by the
/// SDKs (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys, profiles).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Plain HTTP to the endpoint (emulators); on by default for an `http://` endpoint.
    pub allow_http: Option<bool>,
}

impl fmt::Debug for AwsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // never print secrets
        f.debug_struct("AwsOptions")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "…"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "…"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AwsOptions {
    /// The usual AWS variables.
    pub fn from_env() -> AwsOptions {
        AwsOptions {
            endpoint_url: env("AWS_ENDPOINT_URL"),
            region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: env("AWS_ACCESS_KEY_ID"),
            secret_access_key: env("AWS_SECRET_ACCESS_KEY"),
            session_token: env("AWS_SESSION_TOKEN"),
            allow_http: env("AWS_ALLOW_HTTP").map(|v| v == "true" || v == "1"),
        }
    }

    /// Explicit settings for an emulator at `endpoint` (tests, LocalStack).
    pub fn emulator(endpoint: &str) -> AwsOptions {
        AwsOptions {
            endpoint_url: Some(endpoint.to_string()),
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            session_token: None,
            allow_http: Some(true),
        }
    }

    pub fn region_or_default(&self) -> String {
        self.region.clone().unwrap_or_else(|| "us-east-1".into())
    }

    fn allow_http(&self) -> bool {
        self.allow_http.unwrap_or_else(|| {
            self.endpoint_url
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"))
        })
    }

    /// Options in the form delta-rs and object_store take them.
    pub fn storage_options(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        if let Some(e) = &self.endpoint_url {
            m.insert("AWS_ENDPOINT_URL".into(), e.clone());
        }
        m.insert("AWS_REGION".into(), self.region_or_default());
        if let Some(k) = &self.access_key_id {
            m.insert("AWS_ACCESS_KEY_ID".into(), k.clone());
        }
        if let Some(k) = &self.secret_access_key {
            m.insert("AWS_SECRET_ACCESS_KEY".into(), k.clone());
        }
        if let Some(t) = &self.session_token {
            m.insert("AWS_SESSION_TOKEN".into(), t.clone());
        }
        if self.allow_http() {
            m.insert("AWS_ALLOW_HTTP".into(), "true".into());
        }
        m
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(
        "{url:?} is not a storage location: use file:///path, a plain path, or s3://bucket/prefix"
    )]
    Unsupported { url: String },
    #[error("{url:?}: {message}")]
    Invalid { url: String, message: String },
    #[error("cannot open {url}: {source}")]
    Open {
        url: String,
        source: object_store::Error,
    },
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
}

/// A storage root. A local path is absolute (`parse` and the configuration make it so): its
/// URL is `file://` + the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `file:///abs`, `file://rel`, a plain path, or `s3://bucket[/prefix]`. Relative
    /// local paths are made absolute against the working directory.
    pub fn parse(url: &str) -> Result<Location, LocationError> {
        if let Some(rest) = url
            .strip_prefix("s3://")
            .or_else(|| url.strip_prefix("s3a://"))
        {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket {
                return Err(LocationError::Invalid {
                    url: url.into(),
                    message: "an S3 bucket name has 3-63 lowercase letters, digits, '-' or '.'"
                        .into(),
                });
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        let path = if let Some(rest) = url.strip_prefix("file://") {
            rest
        } else if url.contains("://") {
            return Err(LocationError::Unsupported { url: url.into() });
        } else {
            url
        };
        if path.is_empty() {
            return Err(LocationError::Invalid {
                url: url.into(),
                message: "empty path".into(),
            });
        }
        let p = Path::new(path);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        Ok(Location::Local(normalize(&abs)))
    }

    /// A sub-location.
    pub fn join(&self, sub: &str) -> Location {
        let sub = sub.trim_matches('/');
        match self {
            Location::Local(p) => Location::Local(p.join(sub)),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: if prefix.is_empty() {
                    sub.to_string()
                } else {
                    format!("{prefix}/{sub}")
                },
            },
        }
    }

    /// The URL form (`file:///…` or `s3://…`), as delta-rs and users read it.
    pub fn url(&self) -> String {
        match self {
            Location::Local(p) => format!("file://{}", p.display()),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }

    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::S3 { .. } => None,
        }
    }

    /// An object store rooted at this location (a local directory is created if needed).
    pub fn object_store(&self, aws: &AwsOptions) -> Result<Arc<dyn ObjectStore>, LocationError> {
        match self {
            Location::Local(p) => {
                std::fs::create_dir_all(p).map_err(|source| LocationError::CreateDir {
                    path: p.display().to_string(),
                    source,
                })?;
                let fs =
                    LocalFileSystem::new_with_prefix(p).map_err(|source| LocationError::Open {
                        url: self.url(),
                        source,
                    })?;
                Ok(Arc::new(fs))
            }
            Location::S3 { bucket, prefix } => {
                let s3 = s3_builder(bucket, aws)
                    .build()
                    .map_err(|source| LocationError::Open {
                        url: self.url(),
                        source,
                    })?;
                if prefix.is_empty() {
                    Ok(Arc::new(s3))
                } else {
                    Ok(Arc::new(PrefixStore::new(s3, prefix.as_str())))
                }
            }
        }
    }

    pub fn bucket(&self) -> Option<&str> {
        match self {
            Location::S3 { bucket, .. } => Some(bucket),
            Location::Local(_) => None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// An S3 builder with stocklake's settings: explicit options first, the environment after.
pub fn s3_builder(bucket: &str, aws: &AwsOptions) -> AmazonS3Builder {
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_region(aws.region_or_default());
    if let Some(e) = &aws.endpoint_url {
        b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
    }
    if aws.allow_http() {
        b = b.with_allow_http(true);
    }
    if let (Some(k), Some(s)) = (&aws.access_key_id, &aws.secret_access_key) {
        b = b.with_access_key_id(k).with_secret_access_key(s);
        if let Some(t) = &aws.session_token {
            b = b.with_token(t);
        }
    }
    b
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("s3://stocklake-bronze/raw/").ok(),
            Some(Location::S3 {
                bucket: "stocklake-bronze".into(),
                prefix: "raw".into()
            })
        );
        assert_eq!(
            Location::parse("s3://bucket").ok().map(|l| l.url()),
            Some("s3://bucket".into())
        );
        assert!(Location::parse("s3://Bad_Bucket").is_err());
        assert_eq!(
            Location::parse("file:///var/data/../lake").ok(),
            Some(Location::Local("/var/lake".into()))
        );
        assert!(
            matches!(Location::parse("data/bronze"), Ok(Location::Local(p)) if p.is_absolute())
        );
        assert!(Location::parse("gs://x").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn joins() {
        let l = Location::parse("s3://bkt/p").expect("valid");
        assert_eq!(
            l.join("silver/pos_event_lines").url(),
            "s3://bkt/p/silver/pos_event_lines"
        );
        let l = Location::parse("s3://bkt").expect("valid");
        assert_eq!(l.join("/x/").url(), "s3://bkt/x");
        let l = Location::parse("/tmp/lake").expect("valid");
        assert_eq!(l.join("bronze").url(), "file:///tmp/lake/bronze");
    }

    #[test]
    fn secrets_are_not_printed() {
        let o = AwsOptions::emulator("http://127.0.0.1:5000");
        let s = format!("{o:?}");
        assert!(!s.contains("testing"), "{s}");
        assert_eq!(
            o.storage_options()
                .get("AWS_ALLOW_HTTP")
                .map(String::as_str),
            Some("true")
        );
    }
}
