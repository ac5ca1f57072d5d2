# An optional trail (create_cloudtrail, off by default) and its encrypted bucket. Rotation outcomes reach EventBridge
# as CloudTrail events, which need CloudTrail logging in the account and region (EventBridge user guide; the daemon
# checks at start-up and reports rotaudit_cloudtrail_logging). Most accounts have an organization or account trail
# already: create this one only where none logs.

locals {
  trail_name   = "${var.name_prefix}-trail"
  trail_arn    = "arn:${local.partition}:cloudtrail:${var.region}:${local.account_id}:trail/${local.trail_name}"
  trail_bucket = "${var.name_prefix}-trail-${local.account_id}"
}

resource "aws_s3_bucket" "trail" {
  count  = var.create_cloudtrail ? 1 : 0
  bucket = local.trail_bucket

  #checkov:skip=CKV_AWS_18:Access logging of the trail's own log bucket would need a second bucket that itself goes unlogged; CloudTrail log file validation (on) proves the logs were not altered.
  #checkov:skip=CKV_AWS_144:Cross-region replication is the account's choice for audit logs, not this stack's; an organization trail usually covers it.
  #checkov:skip=CKV2_AWS_62:Nothing consumes notifications of new log files: rotaudit reads rotation events from EventBridge, not from the bucket.
  #checkov:skip=CKV_AWS_145:Encrypted with the customer-managed key when var.kms_key_arn is set, else with SSE-S3 (CloudTrail's default): the AWS-managed aws/s3 key cannot be used by CloudTrail's service principal.
}

resource "aws_s3_bucket_public_access_block" "trail" {
  count                   = var.create_cloudtrail ? 1 : 0
  bucket                  = aws_s3_bucket.trail[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Encrypted at rest either way: with the stack's customer-managed key when there is one (its key policy must let
# cloudtrail.amazonaws.com use it), else SSE-S3, CloudTrail's own default. Not the AWS-managed aws/s3 key: its key
# policy admits only this account's principals, and CloudTrail writes as a service principal.
resource "aws_s3_bucket_server_side_encryption_configuration" "trail" {
  count  = var.create_cloudtrail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "trail" {
  count  = var.create_cloudtrail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "trail" {
  count  = var.create_cloudtrail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id

  rule {
    id     = "expire-trail-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.cloudtrail_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# What CloudTrail needs to write (AWS CloudTrail user guide, "Amazon S3 bucket policy for CloudTrail"), only for
# this trail (aws:SourceArn), and nothing over plain HTTP.
data "aws_iam_policy_document" "trail_bucket" {
  count = var.create_cloudtrail ? 1 : 0

  statement {
    sid       = "CloudTrailAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.trail[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid       = "CloudTrailWrite"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.trail[0].arn}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3:x-amz-acl"
      values   = ["bucket-owner-full-control"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.trail[0].arn, "${aws_s3_bucket.trail[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "trail" {
  count  = var.create_cloudtrail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id
  policy = data.aws_iam_policy_document.trail_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.trail]
}

resource "aws_cloudtrail" "this" {
  count          = var.create_cloudtrail ? 1 : 0
  name           = local.trail_name
  s3_bucket_name = aws_s3_bucket.trail[0].id
  kms_key_id     = var.kms_key_arn

  # Multi-region: the regions whose events forward_event_sources brings to this stack need logging too.
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  enable_logging                = true

  #checkov:skip=CKV_AWS_35:A customer-managed key is optional (var.kms_key_arn): without one the log files are encrypted with SSE-S3, CloudTrail's default.
  #checkov:skip=CKV_AWS_252:No one subscribes to a notification per log file: rotation events reach rotaudit through EventBridge, and alerts go through the stack's topic.
  #checkov:skip=CKV2_AWS_10:CloudWatch Logs delivery of the trail would copy every management event of the account into another store; rotaudit needs the EventBridge delivery only.

  depends_on = [aws_s3_bucket_policy.trail]
}
