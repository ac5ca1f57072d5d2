# The audit table: the same key schema and indexes as `rotaudit provision` (daemon/provision.py table_definition).

resource "aws_dynamodb_table" "audit" {
  name                        = "${var.name_prefix}-audit"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "secret_name"
    type = "S"
  }
  attribute {
    name = "run_id"
    type = "S"
  }
  attribute {
    name = "status_name"
    type = "S"
  }

  # `rotaudit history NAME` without the ARN.
  global_secondary_index {
    name            = "by_name"
    hash_key        = "secret_name"
    range_key       = "sk"
    projection_type = "ALL"
  }

  # Sparse index of scan rows that `rotaudit report` reads.
  global_secondary_index {
    name            = "by_run"
    hash_key        = "run_id"
    range_key       = "status_name"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  lifecycle {
    postcondition {
      condition     = self.arn == local.table_arn
      error_message = "The task role names the table by a built ARN (iam.tf local.table_arn): it must be the table's."
    }
  }

  #checkov:skip=CKV_AWS_119:A customer-managed key is optional (var.kms_key_arn); by default the table uses the AWS-managed DynamoDB key, as `rotaudit provision` does, so no key policy has to be owned.
  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
