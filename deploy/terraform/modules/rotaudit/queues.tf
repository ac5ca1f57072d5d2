# The rotation-event queue and its DLQ. Each queue carries its own policy (inline, so the provider's ~25 s
# attribute-propagation wait happens once per queue, not again for a separate policy resource).

locals {
  queue_name        = "${var.name_prefix}-events"
  dlq_name          = "${var.name_prefix}-events-dlq"
  queue_arn         = "arn:${local.partition}:sqs:${var.region}:${local.account_id}:${local.queue_name}"
  dlq_arn           = "arn:${local.partition}:sqs:${var.region}:${local.account_id}:${local.dlq_name}"
  retention_s       = 14 * 24 * 3600 # SQS's maximum: events wait out a long outage
  max_receive_count = 5
  rule_arns         = [for rule in aws_cloudwatch_event_rule.this : rule.arn]
  # Who besides the rules may send: the task role dead-letters rejected messages and replays the DLQ.
  queue_senders = concat([aws_iam_role.task.arn], var.queue_senders)
  dlq_senders   = concat([aws_iam_role.task.arn], var.queue_senders)
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "AllowRotationEventRules"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [local.queue_arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }

  # Principals of this account may hold sqs:SendMessage on every queue in their own IAM policies: the Deny keeps
  # them (and anyone else) from injecting forged rotation events. Only the rules' deliveries and the named
  # senders get through (see daemon/provision.py's queue_policy, which writes the same statements).
  statement {
    sid       = "DenyEveryOtherSender"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [local.queue_arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = local.queue_senders
    }
  }
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "AllowUndeliveredRotationEvents"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [local.dlq_arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }
  }

  # Principals of this account may hold sqs:SendMessage on every queue in their own IAM policies: the Deny keeps
  # them (and anyone else) from injecting forged rotation events. Only the rules' deliveries and the named
  # senders get through (see daemon/provision.py's queue_policy, which writes the same statements).
  statement {
    sid       = "DenyEveryOtherSender"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [local.dlq_arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:SourceArn"
      values   = local.rule_arns
    }

    condition {
      test     = "ArnNotLike"
      variable = "aws:PrincipalArn"
      values   = local.dlq_senders
    }
  }
}

resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = local.retention_s
  sqs_managed_sse_enabled   = true
  policy                    = data.aws_iam_policy_document.dlq.json

  # Named by ARN, not by reference: the queue already depends on the DLQ through its redrive policy.
  redrive_allow_policy = var.enable_redrive_allow_policy ? jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn]
  }) : null
}

resource "aws_sqs_queue" "events" {
  name                       = local.queue_name
  message_retention_seconds  = local.retention_s
  visibility_timeout_seconds = 60 # the daemon extends it while work runs long
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  policy                     = data.aws_iam_policy_document.queue.json

  # Canonical JSON (jsonencode sorts keys, no spaces) so a re-read matches what was written.
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = local.max_receive_count
  })
}
