# Forwards one region's (and account's) Secrets Manager events to rotaudit's region: EventBridge rules are regional,
# so rotations elsewhere reach the audit queue only through an event-bus target (AWS-FACTS §1). Apply this module
# once per source region, with a provider for that region and account; the root module's event_sources lets the
# other accounts put events on the target bus, and its outputs give target_event_bus_arn and event_patterns.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

variable "name_prefix" {
  description = "Prefix of the rules and the role (the stack's name_prefix)."
  type        = string
  default     = "rotaudit"
}

variable "target_event_bus_arn" {
  description = "The default event bus of rotaudit's region (the root module's event_bus_arn output)."
  type        = string
}

variable "event_patterns" {
  description = "Rule name suffix -> event pattern JSON (the root module's event_patterns output): the same events rotaudit's own rules match."
  type        = map(string)
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  region = data.aws_region.current.name
}

data "aws_iam_policy_document" "events_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# An event-bus target in another region or account needs a role EventBridge assumes to put the events there.
resource "aws_iam_role" "forward" {
  name               = "${var.name_prefix}-forward-${local.region}"
  description        = "EventBridge forwarding Secrets Manager events to rotaudit"
  assume_role_policy = data.aws_iam_policy_document.events_trust.json
}

data "aws_iam_policy_document" "forward" {
  statement {
    sid       = "PutOnRotauditsBus"
    actions   = ["events:PutEvents"]
    resources = [var.target_event_bus_arn]
  }
}

resource "aws_iam_role_policy" "forward" {
  name   = "forward-to-rotaudit"
  role   = aws_iam_role.forward.id
  policy = data.aws_iam_policy_document.forward.json
}

resource "aws_cloudwatch_event_rule" "forward" {
  for_each = var.event_patterns

  name          = "${var.name_prefix}-forward-${each.key}"
  description   = "Secrets Manager events of ${local.region} to rotaudit's region"
  event_pattern = each.value
  state         = "ENABLED"
}

resource "aws_cloudwatch_event_target" "forward" {
  for_each = var.event_patterns

  rule      = aws_cloudwatch_event_rule.forward[each.key].name
  target_id = "rotaudit-bus"
  arn       = var.target_event_bus_arn
  role_arn  = aws_iam_role.forward.arn
}

output "rule_names" {
  value = [for rule in aws_cloudwatch_event_rule.forward : rule.name]
}

output "role_arn" {
  value = aws_iam_role.forward.arn
}
