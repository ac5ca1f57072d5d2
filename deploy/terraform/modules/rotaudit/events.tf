# EventBridge rules that route Secrets Manager rotation events to the queue. The patterns are exactly the ones
# `rotaudit provision` puts (daemon/provision.py); tests/deploy/test_terraform.py compares them.

locals {
  # daemon.events: ROTATION_EVENTS | API_CALL_EVENTS, sorted.
  rotation_event_names = sort([
    "RotationStarted", "RotationSucceeded", "RotationFailed", "RotationAbandoned",
    "TestRotationStarted", "TestRotationSucceeded", "TestRotationFailed",
    "RotateSecret", "CancelRotateSecret", "PutSecretValue", "UpdateSecretVersionStage",
  ])

  # Rotation outcomes are CloudTrail service events; API calls are API-call events: match both detail-types.
  rotation_event_pattern = {
    "source"      = ["aws.secretsmanager"]
    "detail-type" = ["AWS Service Event via CloudTrail", "AWS API Call via CloudTrail"]
    "detail" = {
      "eventSource" = ["secretsmanager.amazonaws.com"]
      "eventName"   = local.rotation_event_names
    }
  }

  label_event_pattern = {
    "source"      = ["aws.secretsmanager"]
    "detail-type" = ["Secret Label Updated"]
  }

  # `rotaudit doctor --probe` sends its own event (AWS refuses aws.* sources in PutEvents); daemon/probe.py.
  probe_event_pattern = {
    "source"      = ["rotaudit.doctor"]
    "detail-type" = ["rotaudit doctor probe"]
  }

  event_rules = {
    rotation = {
      name        = "${var.name_prefix}-rotation-events"
      description = "Secrets Manager rotation events to rotaudit"
      pattern     = local.rotation_event_pattern
    }
    label = {
      name        = "${var.name_prefix}-label-updated"
      description = "Secrets Manager label moves to rotaudit"
      pattern     = local.label_event_pattern
    }
    probe = {
      name        = "${var.name_prefix}-doctor-probe"
      description = "rotaudit doctor --probe: its probe events to rotaudit"
      pattern     = local.probe_event_pattern
    }
  }
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = local.event_rules

  name          = each.value.name
  description   = each.value.description
  event_pattern = jsonencode(each.value.pattern)
  state         = "ENABLED"
}

resource "aws_cloudwatch_event_target" "queue" {
  for_each = local.event_rules

  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "rotaudit-queue"
  arn       = aws_sqs_queue.events.arn

  # An event EventBridge cannot deliver lands in the DLQ (rotaudit reports it as eventbridge_undelivered).
  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }
}

# Events from other regions and accounts (EventBridge rules are regional): each source region runs
# modules/forward-events, whose rules put the same events on this region's default bus, where the rules above
# route them to the queue. Other accounts may put only Secrets Manager events here.
locals {
  event_bus_arn = "arn:${local.partition}:events:${var.region}:${local.account_id}:event-bus/default"
  forwarding_accounts = distinct([
    for source in var.event_sources : source.account_id if source.account_id != "" && source.account_id != local.account_id
  ])
}

data "aws_iam_policy_document" "event_bus" {
  count = length(local.forwarding_accounts) > 0 ? 1 : 0

  statement {
    sid       = "SecretsManagerEventsFromSourceAccounts"
    actions   = ["events:PutEvents"]
    resources = [local.event_bus_arn]

    principals {
      type        = "AWS"
      identifiers = local.forwarding_accounts
    }

    condition {
      test     = "StringEquals"
      variable = "events:source"
      values   = ["aws.secretsmanager"]
    }
  }
}

resource "aws_cloudwatch_event_bus_policy" "forwarded" {
  count          = length(local.forwarding_accounts) > 0 ? 1 : 0
  event_bus_name = "default"
  policy         = data.aws_iam_policy_document.event_bus[0].json
}
