//! AWS SDK clients (Kinesis, S3 bucket creation) built from [`AwsOptions`].
//!
//! Explicit options win; anything unset is read by the SDK from the environment
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, keys, profiles). Without a region, `us-east-1` is used,
//! as emulators expect.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::config::Credentials;

use crate::location::AwsOptions;

/// Loads the shared SDK configuration.
pub async fn sdk_config(opts: &AwsOptions) -> SdkConfig {
    // a service that stops answering must fail a call, not hang it: the stages retry with
    // backoff and report the failure (a GetRecords long-poll never takes 10 s)
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .operation_attempt_timeout(std::time::Duration::from_secs(10))
        .operation_timeout(std::time::Duration::from_secs(25))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(opts.region_or_default()))
        .timeout_config(timeouts);
    if let Some(e) = &opts.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    if let (Some(k), Some(s)) = (&opts.access_key_id, &opts.secret_access_key) {
        loader = loader.credentials_provider(Credentials::new(
            k.clone(),
            s.clone(),
            opts.session_token.clone(),
            None,
            "stocklake",
        ));
    }
    loader.load().await
}

/// A Kinesis client.
pub async fn kinesis_client(opts: &AwsOptions) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(opts).await)
}

/// An S3 client; path-style addressing when a custom endpoint is set (emulators need it).
pub async fn s3_client(opts: &AwsOptions) -> aws_sdk_s3::Client {
    let cfg = sdk_config(opts).await;
    let s3 = aws_sdk_s3::config::Builder::from(&cfg)
        .force_path_style(opts.endpoint_url.is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// Creates an S3 bucket unless it exists already; `Ok(true)` when it was created.
///
/// Asks `HeadBucket` first, so that a role that may use the bucket but not create buckets
/// (the least-privilege policies of `deploy/terraform`) passes `init` once the bucket exists.
pub async fn ensure_bucket(opts: &AwsOptions, bucket: &str) -> Result<bool, String> {
    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
    let client = s3_client(opts).await;
    match client.head_bucket().bucket(bucket).send().await {
        Ok(_) => return Ok(false),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let not_found = e.as_service_error().is_some_and(|s| s.is_not_found());
            if status == Some(403) {
                return Err(format!(
                    "bucket {bucket}: access denied (it exists but these credentials may not use it)"
                ));
            }
            if !not_found && status != Some(404) {
                return Err(format!(
                    "cannot check bucket {bucket}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ));
            }
        }
    }
    let mut req = client.create_bucket().bucket(bucket);
    let region = opts.region_or_default();
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let service = e.as_service_error();
            if service.is_some_and(|s| s.is_bucket_already_owned_by_you()) {
                Ok(false)
            } else if service.is_some_and(|s| s.is_bucket_already_exists()) {
                Err(format!(
                    "bucket {bucket} exists and belongs to another account"
                ))
            } else {
                Err(format!(
                    "cannot create bucket {bucket}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                ))
            }
        }
    }
}

/// Parses `kinesis://STREAM` (or a bare stream name) into the stream name.
pub fn parse_stream_url(url: &str) -> Result<String, String> {
    let name = url
        .strip_prefix("kinesis://")
        .unwrap_or(url)
        .trim_end_matches('/');
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{url:?} is not a Kinesis stream: expected kinesis://NAME (letters, digits, _ - .)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls() {
        assert_eq!(
            parse_stream_url("kinesis://supermarket-sales-stream").as_deref(),
            Ok("supermarket-sales-stream")
        );
        assert_eq!(parse_stream_url("pos_events").as_deref(), Ok("pos_events"));
        assert!(parse_stream_url("kinesis://").is_err());
        assert!(parse_stream_url("kinesis://a b").is_err());
    }
}
