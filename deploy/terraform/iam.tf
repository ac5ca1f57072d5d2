# The task role (what the daemon may do: least privilege, resource-scoped) and the execution role (what ECS
# needs to start the container). Inline policies only: no AWS-managed policy is attached.

locals {
  secret_arns = coalesce(
    var.readable_secret_arns,
    ["arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:*"],
  )
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
    resources = [aws_sqs_queue.events.arn]
  }

  statement {
    sid = "RejectToAndWatchDlq"
    actions = [
      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
    ]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid = "AuditTable"
    actions = [
      "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:Query",
      "dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive",
    ]
    resources = [aws_dynamodb_table.audit.arn, "${aws_dynamodb_table.audit.arn}/index/*"]
  }

  statement {
    sid       = "Notify"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications.arn]
  }

  # ListSecrets cannot be scoped to resources: AWS allows only "*".
  statement {
    sid       = "ListSecretsForScan"
    actions   = ["secretsmanager:ListSecrets"]
    resources = ["*"]
  }

  statement {
    sid = "ReadSecrets"
    actions = [
      "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds", "secretsmanager:GetSecretValue",
    ]
    resources = local.secret_arns
  }

  # Remediation (RotateSecret, UpdateSecretVersionStage) and sync (PutSecretValue) change only managed secrets.
  statement {
    sid = "WriteManagedSecretsOnly"
    actions = [
      "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage", "secretsmanager:RotateSecret",
    ]
    resources = local.secret_arns

    condition {
      test     = "StringEquals"
      variable = "secretsmanager:ResourceTag/${var.managed_tag.key}"
      values   = [var.managed_tag.value]
    }
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "SecretsKeysThroughSecretsManager"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = var.secrets_kms_key_arns

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
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

  dynamic "statement" {
    for_each = length(var.scan_role_arns) > 0 ? [1] : []
    content {
      sid       = "ScanOtherAccounts"
      actions   = ["sts:AssumeRole"]
      resources = var.scan_role_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ecs_service_arns) > 0 ? [1] : []
    content {
      sid       = "RedeployAfterSync"
      actions   = ["ecs:UpdateService"]
      resources = var.ecs_service_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.automation_document_arns) > 0 ? [1] : []
    content {
      sid       = "RestartConsumers"
      actions   = ["ssm:StartAutomationExecution"]
      resources = var.automation_document_arns
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "rotaudit"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
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
