# One policy per stage, each allowed only what that stage does:
#   producer  puts records on the stream (the tills, or `stocklake simulate --to kinesis://…`)
#   ingest    reads the stream; lists, reads and writes bronze (it resumes from bronze's names)
#   refine    reads bronze; reads, writes and deletes in silver (commits, compaction, vacuum)
#   model     reads silver (gold itself is PostgreSQL); reads, writes and deletes in the gold
#             bucket, where it publishes gold as Delta tables (the gold lake)
# `stocklake run` runs all three stages in one process: its role carries the three policies.
# `stocklake init` needs no create rights once Terraform has made the buckets and the stream:
# it only looks them up (HeadBucket, DescribeStreamSummary).

locals {
  bronze_arn = aws_s3_bucket.this["bronze"].arn
  silver_arn = aws_s3_bucket.this["silver"].arn
  gold_arn   = aws_s3_bucket.this["gold"].arn
  stream_arn = aws_kinesis_stream.sales.arn

  # the stream's key is used through Kinesis only
  kms_via_kinesis = {
    test     = "StringEquals"
    variable = "kms:ViaService"
    values   = ["kinesis.${var.region}.amazonaws.com"]
  }
}

data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "PutOnStream"
    actions   = ["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"]
    resources = [local.stream_arn]
  }
  statement {
    sid       = "EncryptThroughKinesis"
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = local.kms_via_kinesis.test
      variable = local.kms_via_kinesis.variable
      values   = local.kms_via_kinesis.values
    }
  }
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid = "ReadStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:ListShards",
      "kinesis:GetShardIterator",
      "kinesis:GetRecords",
    ]
    resources = [local.stream_arn]
  }
  statement {
    sid       = "DecryptThroughKinesis"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    condition {
      test     = local.kms_via_kinesis.test
      variable = local.kms_via_kinesis.variable
      values   = local.kms_via_kinesis.values
    }
  }
  statement {
    sid       = "ListBronze"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.bronze_arn]
  }
  statement {
    sid       = "ReadWriteBronzeObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.bronze_arn}/*"]
  }
}

data "aws_iam_policy_document" "refine" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.bronze_arn, local.silver_arn]
  }
  statement {
    sid       = "ReadBronze"
    actions   = ["s3:GetObject"]
    resources = ["${local.bronze_arn}/*"]
  }
  statement {
    sid       = "ReadWriteSilver"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.silver_arn}/*"]
  }
}

data "aws_iam_policy_document" "model" {
  statement {
    sid       = "ListSilverAndGold"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.silver_arn, local.gold_arn]
  }
  statement {
    sid       = "ReadSilver"
    actions   = ["s3:GetObject"]
    resources = ["${local.silver_arn}/*"]
  }
  statement {
    sid       = "ReadWriteGoldLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.gold_arn}/*"]
  }
}

locals {
  stage_policies = {
    producer = data.aws_iam_policy_document.producer.json
    ingest   = data.aws_iam_policy_document.ingest.json
    refine   = data.aws_iam_policy_document.refine.json
    model    = data.aws_iam_policy_document.model.json
  }

  # which policies each role carries
  roles = {
    producer = ["producer"]
    ingest   = ["ingest"]
    refine   = ["refine"]
    model    = ["model"]
    run      = ["ingest", "refine", "model"]
  }

  role_attachments = merge([
    for role, policies in local.roles : {
      for p in policies : "${role}/${p}" => { role = role, policy = p }
    }
  ]...)
}

resource "aws_iam_policy" "stage" {
  for_each = local.stage_policies

  name        = "${var.name_prefix}-${each.key}"
  description = "stocklake ${each.key}: least privilege on ${local.stream_name} and the ${var.name_prefix} buckets"
  policy      = each.value
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [var.task_principal]
    }
  }
}

resource "aws_iam_role" "stage" {
  for_each = local.roles

  name               = "${var.name_prefix}-${each.key}"
  description        = "stocklake ${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy_attachment" "stage" {
  for_each = local.role_attachments

  role       = aws_iam_role.stage[each.value.role].name
  policy_arn = aws_iam_policy.stage[each.value.policy].arn
}
