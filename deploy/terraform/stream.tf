# The stream the tills (or `stocklake simulate --to kinesis://…`) write to; partition key = store.

resource "aws_kinesis_stream" "sales" {
  name             = local.stream_name
  shard_count      = var.shard_count
  retention_period = var.retention_hours

  encryption_type = "KMS"
  kms_key_id      = var.stream_kms_key_id

  stream_mode_details {
    stream_mode = "PROVISIONED"
  }

  shard_level_metrics = [
    "IncomingRecords",
    "IteratorAgeMilliseconds",
    "ReadProvisionedThroughputExceeded",
    "WriteProvisionedThroughputExceeded",
  ]
}
