# stocklake's AWS resources: the stream the tills write to, the bronze, silver and gold buckets,
# and one least-privilege policy (and role) per stage. `terraform output -raw dotenv` prints
# the settings stocklake reads.

provider "aws" {
  region = var.region

  # LocalStack accepts any keys and has no instance metadata or account lookup.
  access_key                  = var.localstack ? "test" : null
  secret_key                  = var.localstack ? "test" : null
  skip_credentials_validation = var.localstack
  skip_metadata_api_check     = var.localstack
  skip_requesting_account_id  = var.localstack
  s3_use_path_style           = var.localstack

  dynamic "endpoints" {
    for_each = var.localstack ? [var.localstack_endpoint] : []
    content {
      iam     = endpoints.value
      kinesis = endpoints.value
      kms     = endpoints.value
      s3      = endpoints.value
      sts     = endpoints.value
    }
  }

  default_tags {
    tags = var.tags
  }
}

locals {
  stream_name = var.stream_name != "" ? var.stream_name : "${var.name_prefix}-sales-stream"

  buckets = {
    bronze = "${var.name_prefix}-bronze"
    silver = "${var.name_prefix}-silver"
    gold   = "${var.name_prefix}-gold"
  }
}
