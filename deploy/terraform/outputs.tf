output "stream_name" {
  description = "KINESIS_STREAM_NAME"
  value       = aws_kinesis_stream.sales.name
}

output "bronze_url" {
  description = "STOCKLAKE_BRONZE (or S3_BUCKET_BRONZE = the bucket)"
  value       = "s3://${aws_s3_bucket.this["bronze"].bucket}"
}

output "silver_url" {
  description = "STOCKLAKE_SILVER (or S3_BUCKET_SILVER = the bucket)"
  value       = "s3://${aws_s3_bucket.this["silver"].bucket}"
}

output "buckets" {
  description = "Bucket name per layer."
  value       = { for layer, b in aws_s3_bucket.this : layer => b.bucket }
}

output "policy_arns" {
  description = "The least-privilege policy of each stage."
  value       = { for stage, p in aws_iam_policy.stage : stage => p.arn }
}

output "role_arns" {
  description = "A role per stage, and `run` with the policies of ingest, refine and model."
  value       = { for role, r in aws_iam_role.stage : role => r.arn }
}

locals {
  env = merge(
    {
      AWS_REGION          = var.region
      KINESIS_STREAM_NAME = aws_kinesis_stream.sales.name
      S3_BUCKET_BRONZE    = aws_s3_bucket.this["bronze"].bucket
      S3_BUCKET_SILVER    = aws_s3_bucket.this["silver"].bucket
      S3_BUCKET_GOLD      = aws_s3_bucket.this["gold"].bucket
    },
    var.localstack ? { AWS_ENDPOINT_URL = var.localstack_endpoint } : {},
  )
}

output "env" {
  description = "The settings stocklake reads, by environment variable name."
  value       = local.env
}

output "dotenv" {
  description = "The same as lines of a .env file: terraform output -raw dotenv >> .env"
  value       = join("", [for k in sort(keys(local.env)) : "${k}=${local.env[k]}\n"])
}
