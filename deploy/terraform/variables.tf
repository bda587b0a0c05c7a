variable "region" {
  description = "AWS region of the buckets and the stream (AWS_REGION)."
  type        = string
  default     = "eu-west-1"
}

variable "name_prefix" {
  description = "Prefix of every bucket, stream, policy and role name. Bucket names are global on AWS: make it yours."
  type        = string
  default     = "stocklake"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name_prefix))
    error_message = "name_prefix must be 2-41 characters of lower-case letters, digits and '-'."
  }
}

variable "stream_name" {
  description = "Kinesis stream the tills write to (KINESIS_STREAM_NAME). Empty: <name_prefix>-sales-stream."
  type        = string
  default     = ""
}

variable "shard_count" {
  description = "Shards of the Kinesis stream; each takes 1 MB/s or 1,000 records/s of writes."
  type        = number
  default     = 2

  validation {
    condition     = var.shard_count >= 1
    error_message = "shard_count must be at least 1."
  }
}

variable "retention_hours" {
  description = "How long Kinesis keeps records (24 to 8760). Ingest must not fall further behind than this."
  type        = number
  default     = 48

  validation {
    condition     = var.retention_hours >= 24 && var.retention_hours <= 8760
    error_message = "retention_hours must be between 24 and 8760."
  }
}

variable "stream_kms_key_id" {
  description = "KMS key of the stream's server-side encryption; the AWS-managed key by default."
  type        = string
  default     = "alias/aws/kinesis"
}

variable "bronze_infrequent_access_days" {
  description = "Bronze objects move to STANDARD_IA after this many days (0: never). Replays read them again, so keep it above the replay window you expect."
  type        = number
  default     = 30
}

variable "bronze_expiry_days" {
  description = "Bronze objects are deleted after this many days (0: kept for ever). Bronze is the audit trail and the source of every rebuild."
  type        = number
  default     = 400
}

variable "noncurrent_version_days" {
  description = "Overwritten or deleted object versions (Delta vacuum, compaction) are kept this many days."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets. Keep false outside test accounts."
  type        = bool
  default     = false
}

variable "task_principal" {
  description = "Service that assumes the per-stage roles (ECS tasks by default; ec2.amazonaws.com for instances)."
  type        = string
  default     = "ecs-tasks.amazonaws.com"
}

variable "localstack" {
  description = "Point the provider at LocalStack instead of AWS (see localstack.tfvars)."
  type        = bool
  default     = false
}

variable "localstack_endpoint" {
  description = "LocalStack's edge endpoint when localstack = true."
  type        = string
  default     = "http://localhost:4566"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default = {
    application = "stocklake"
  }
}
