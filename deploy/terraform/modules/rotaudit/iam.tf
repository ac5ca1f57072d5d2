# The task role (what the daemon may do: least privilege, resource-scoped) and the execution role (what ECS
# needs to start the container). Inline policies only: no AWS-managed policy is attached.

# What each feature needs is derived from the daemon's own AWS calls by tests/deploy/test_iam.py, which checks this
# policy against that derivation for several configurations: nothing missing, nothing granted that no code uses.
# Every ARN here is built from names, so the whole policy is known at plan time (the test reads the plan).
locals {
  remediation_on     = var.remediation_mode != "off"
  remediation_writes = var.remediation_mode == "apply" # dry-run and off change no secret: no write is granted
  sync_on            = length(var.sync_pairs) > 0

  table_arn         = "arn:${local.partition}:dynamodb:${var.region}:${local.account_id}:table/${var.name_prefix}-audit"
  topic_arn         = "arn:${local.partition}:sns:${var.region}:${local.account_id}:${var.name_prefix}-notifications"
  secrets_in_region = "arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:"

  # A sync pair names a secret by name (this account and region: the ARN ends in "-" and 6 random characters, which
  # IAM matches with "-??????") or by full ARN.
  sync_sources = distinct([for pair in var.sync_pairs : startswith(pair.source, "arn:") ? pair.source : "${local.secrets_in_region}${pair.source}-??????"])
  sync_targets = distinct([for pair in var.sync_pairs : startswith(pair.target, "arn:") ? pair.target : "${local.secrets_in_region}${pair.target}-??????"])
  sync_services = distinct(flatten([
    for pair in var.sync_pairs : [for ref in pair.ecs_services : "arn:${local.partition}:ecs:${var.region}:${local.account_id}:service/${ref}"]
  ]))

  # The scan lists this account's managed secrets in the stack's region and in its own-account target regions.
  scan_roles = distinct([for target in var.scan_targets : target.role_arn if target.role_arn != ""])
  scan_regions = distinct(concat([var.region], flatten([
    for target in var.scan_targets : (length(target.regions) > 0 ? target.regions : [var.region]) if target.role_arn == ""
  ])))
  managed_secrets_scanned = [for region in local.scan_regions : "arn:${local.partition}:secretsmanager:${region}:${local.account_id}:secret:*"]

  # The audit table's partitions that take UpdateItem and DeleteItem (dynamodb:LeadingKeys): the scan's window
  # leases and daily rollups; remediation's claims, wake-ups and notification markers; the open failures (always
  # kept). Every other partition (events, scan rows and runs, history, sync records) is only ever put, read or queried.
  update_partitions = concat(var.scan_enabled ? ["lease#scan", "rollup#*"] : [], local.remediation_on ? ["remediation#*", "notify#*"] : [])
  delete_partitions = concat(["failures-open"], local.remediation_on ? ["remediation-due", "notify#*"] : [])
}

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Only ECS acting for this account may assume the roles (confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${var.name_prefix}-task"
  description        = "rotaudit daemon"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-execution"
  description        = "ECS starting the rotaudit daemon"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

data "aws_iam_policy_document" "task" {
  statement {
    sid = "ConsumeRotationEvents"
    actions = [
      "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    ]
    resources = [local.queue_arn]
  }

  # Rejected messages go to the DLQ; its monitor reads depth and peeks (ReceiveMessage, visibility 0) for age.
  statement {
    sid       = "RejectToAndWatchDlq"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [local.dlq_arn]
  }

  statement {
    sid = "AuditTable"
    actions = concat(
      # GetItem and ConditionCheckItem: the open failures' state is read, and written in transactions that check
      # both of a secret's items (also a stale remediation wake-up's delete checks its claim no longer wants it).
      ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:ConditionCheckItem"],
      var.scan_enabled ? ["dynamodb:BatchWriteItem"] : [],
    )
    resources = [local.table_arn, "${local.table_arn}/index/*"]
  }

  dynamic "statement" {
    for_each = length(local.update_partitions) > 0 ? [1] : []
    content {
      sid       = "AuditTableLeasesAndClaims"
      actions   = ["dynamodb:UpdateItem"]
      resources = [local.table_arn]

      condition {
        test     = "ForAllValues:StringLike"
        variable = "dynamodb:LeadingKeys"
        values   = local.update_partitions
      }
    }
  }

  dynamic "statement" {
    for_each = length(local.delete_partitions) > 0 ? [1] : []
    content {
      sid       = "AuditTableWakeUps"
      actions   = ["dynamodb:DeleteItem"]
      resources = [local.table_arn]

      condition {
        test     = "ForAllValues:StringLike"
        variable = "dynamodb:LeadingKeys"
        values   = local.delete_partitions
      }
    }
  }

  # Remediation and sync notify; the daemon core does not.
  dynamic "statement" {
    for_each = local.remediation_on || local.sync_on ? [1] : []
    content {
      sid       = "Notify"
      actions   = ["sns:Publish"]
      resources = [local.topic_arn]
    }
  }

  # The start-up check for a logging trail. DescribeTrails cannot be scoped to resources, and the trail that logs
  # this region may be a multi-region or organization trail of another region or account: "*".
  statement {
    sid       = "CheckCloudTrailLogging"
    actions   = ["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"]
    resources = ["*"]
  }

  # ListSecrets cannot be scoped to resources: AWS allows only "*". Values are never read by the scan.
  dynamic "statement" {
    for_each = var.scan_enabled ? [1] : []
    content {
      sid       = "ListSecretsForScan"
      actions   = ["secretsmanager:ListSecrets"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.scan_enabled ? [1] : []
    content {
      sid       = "VersionsOfScannedSecrets"
      actions   = ["secretsmanager:ListSecretVersionIds"]
      resources = local.managed_secrets_scanned

      condition {
        test     = "StringEquals"
        variable = "secretsmanager:ResourceTag/${var.managed_tag.key}"
        values   = [var.managed_tag.value]
      }
    }
  }

  dynamic "statement" {
    for_each = var.scan_enabled && length(local.scan_roles) > 0 ? [1] : []
    content {
      sid       = "ScanOtherAccounts"
      actions   = ["sts:AssumeRole"]
      resources = local.scan_roles
    }
  }

  # Remediation reads the real state of a managed secret whose rotation failed, and (remediation_mode = apply only)
  # moves its labels and retries its rotation: managed secrets only (the scan tag), in this account and region.
  dynamic "statement" {
    for_each = local.remediation_on ? [1] : []
    content {
      sid       = "DescribeManagedSecrets"
      actions   = ["secretsmanager:DescribeSecret"]
      resources = ["${local.secrets_in_region}*"]

      condition {
        test     = "StringEquals"
        variable = "secretsmanager:ResourceTag/${var.managed_tag.key}"
        values   = [var.managed_tag.value]
      }
    }
  }

  dynamic "statement" {
    for_each = local.remediation_writes ? [1] : []
    content {
      sid       = "RemediateManagedSecretsOnly"
      actions   = ["secretsmanager:UpdateSecretVersionStage", "secretsmanager:RotateSecret"]
      resources = ["${local.secrets_in_region}*"]

      condition {
        test     = "StringEquals"
        variable = "secretsmanager:ResourceTag/${var.managed_tag.key}"
        values   = [var.managed_tag.value]
      }
    }
  }

  # RotateSecret's caller also needs lambda:InvokeFunction on the rotation function (RotateSecret API reference).
  dynamic "statement" {
    for_each = local.remediation_writes ? [1] : []
    content {
      sid       = "InvokeRotationFunctions"
      actions   = ["lambda:InvokeFunction"]
      resources = var.rotation_function_arns
    }
  }

  dynamic "statement" {
    for_each = local.remediation_writes && length(var.automation_document_arns) > 0 ? [1] : []
    content {
      sid       = "RestartConsumers"
      actions   = ["ssm:StartAutomationExecution"]
      resources = var.automation_document_arns
    }
  }

  # Only sync reads secret values: the pairs' sources and targets, nothing else.
  dynamic "statement" {
    for_each = local.sync_on ? [1] : []
    content {
      sid       = "ReadSyncPairs"
      actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
      resources = distinct(concat(local.sync_sources, local.sync_targets))
    }
  }

  # The conditional write: PutSecretValue unstaged, then UpdateSecretVersionStage moves AWSCURRENT (README).
  dynamic "statement" {
    for_each = local.sync_on ? [1] : []
    content {
      sid       = "WriteSyncTargets"
      actions   = ["secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
      resources = local.sync_targets
    }
  }

  dynamic "statement" {
    for_each = length(local.sync_services) > 0 ? [1] : []
    content {
      sid       = "RedeployAfterSync"
      actions   = ["ecs:UpdateService"]
      resources = local.sync_services
    }
  }

  dynamic "statement" {
    for_each = local.sync_on && length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "SyncSecretsKeysThroughSecretsManager"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = var.secrets_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }

  # Security Hub findings (securityhub_findings): import this account's findings with the default product ARN, and
  # read back which of them are open. Service Authorization Reference: BatchImportFindings acts on the "product"
  # resource, GetFindings on the "hub".
  dynamic "statement" {
    for_each = var.securityhub_findings ? [1] : []
    content {
      sid       = "ImportSecurityHubFindings"
      actions   = ["securityhub:BatchImportFindings"]
      resources = ["arn:${local.partition}:securityhub:${var.region}:${local.account_id}:product/${local.account_id}/default"]
    }
  }

  dynamic "statement" {
    for_each = var.securityhub_findings ? [1] : []
    content {
      sid       = "ReadSecurityHubFindings"
      actions   = ["securityhub:GetFindings"]
      resources = ["arn:${local.partition}:securityhub:${var.region}:${local.account_id}:hub/default"]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [1]
    content {
      sid       = "StackKeyThroughDynamoDbAndSns"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${var.region}.amazonaws.com", "sns.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "rotaudit"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json

  lifecycle {
    precondition {
      condition     = !local.remediation_writes || length(var.rotation_function_arns) > 0
      error_message = "remediation_mode = \"apply\" retries rotations with RotateSecret, whose caller also needs lambda:InvokeFunction on the rotation function: list the rotation functions in rotation_function_arns, or set remediation_mode to \"dry-run\" or \"off\"."
    }
  }
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "WriteDaemonLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.daemon.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "PullImage"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
      resources = var.ecr_repository_arns
    }
  }

  # GetAuthorizationToken cannot be scoped to resources: AWS allows only "*".
  dynamic "statement" {
    for_each = length(var.ecr_repository_arns) > 0 ? [1] : []
    content {
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "ecs-start"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
