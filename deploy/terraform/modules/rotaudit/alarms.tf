# CloudWatch alarms and saved Logs Insights queries, for teams without Prometheus (deploy/prometheus has the same
# signals as alert rules). Every alarm notifies var.alarm_topic_arn, else the stack's topic.
#
# CloudWatch can publish only to a topic whose key policy lets cloudwatch.amazonaws.com use the key: not to one
# encrypted with the AWS-managed aws/sns key, the stack topic's default (Amazon SNS developer guide, "Enable
# compatibility between event sources from AWS services and encrypted topics"). So set kms_key_arn (a customer-
# managed key whose policy admits CloudWatch) or alarm_topic_arn; the check below warns at plan time otherwise.
#
# The log metric filters and queries read the daemon's JSON log lines (daemon/logs.py: structlog's `event` name,
# `level`, `timestamp`, `component`, then the event's fields). tests/unit/test_terraform_alarms.py holds every event
# name and field used here to what the code logs.

locals {
  alarm_actions   = var.alarm_topic_arn != null ? [var.alarm_topic_arn] : [aws_sns_topic.notifications.arn]
  metric_ns       = "rotaudit/${var.name_prefix}"
  dlq_dimensions  = { QueueName = local.dlq_name }
  ecs_dimensions  = { ClusterName = local.cluster_name, ServiceName = "${var.name_prefix}-daemon" }
  alarm_frequency = 300

  # The daemon's own health: any ERROR line (a failed pass, a forced exit, a failed start-up check, ...).
  # Failed remediations: an AWS error ending a remediation (remediation.failed), a pass that failed and will be
  # retried or escalated (remediation.pass_failed), the remediation job itself failing, an action that failed.
  log_metrics = {
    errors = {
      metric  = "ErrorLogs"
      pattern = "{ $.level = \"error\" }"
    }
    failed_remediations = {
      metric  = "FailedRemediations"
      pattern = "{ ($.event = \"remediation.failed\") || ($.event = \"remediation.pass_failed\") || ($.event = \"remediation.job_failed\") || (($.event = \"remediation.action_applied\") && ($.result = \"failed\")) }"
    }
  }

  # Simple threshold alarms on one metric each (AWS/SQS metrics: Amazon SQS developer guide, "Available CloudWatch
  # metrics for Amazon SQS"; QueueName is their dimension).
  metric_alarms = merge(
    {
      dlq_depth = {
        description = "Messages wait in the rotaudit DLQ: rejected events or events EventBridge could not deliver. `rotaudit dlq list`, then `rotaudit dlq replay`."
        namespace   = "AWS/SQS"
        metric      = "ApproximateNumberOfMessagesVisible"
        dimensions  = local.dlq_dimensions
        statistic   = "Maximum"
        threshold   = 0
        missing     = "notBreaching"
      }
      dlq_age = {
        description = "The oldest message in the rotaudit DLQ is older than ${var.alarm_dlq_age_s} s: nobody is looking at it (SQS drops it after 14 days)."
        namespace   = "AWS/SQS"
        metric      = "ApproximateAgeOfOldestMessage"
        dimensions  = local.dlq_dimensions
        statistic   = "Maximum"
        threshold   = var.alarm_dlq_age_s
        missing     = "notBreaching"
      }
      daemon_errors = {
        description = "The rotaudit daemon logged ERROR lines: query the log group (saved query \"${var.name_prefix}/errors\")."
        namespace   = local.metric_ns
        metric      = local.log_metrics.errors.metric
        dimensions  = {}
        statistic   = "Sum"
        threshold   = var.alarm_error_logs
        missing     = "notBreaching"
      }
      failed_remediations = {
        description = "A rotaudit remediation failed: see the saved query \"${var.name_prefix}/remediations-needing-a-human\" and `rotaudit history`."
        namespace   = local.metric_ns
        metric      = local.log_metrics.failed_remediations.metric
        dimensions  = {}
        statistic   = "Sum"
        threshold   = 0
        missing     = "notBreaching"
      }
    },
  )
}

check "alarms_can_notify" {
  assert {
    condition     = !var.alarms_enabled || var.kms_key_arn != null || var.alarm_topic_arn != null
    error_message = "The alarms notify the stack's topic, which is encrypted with the AWS-managed aws/sns key: CloudWatch cannot publish to it. Set kms_key_arn (a customer-managed key whose policy admits cloudwatch.amazonaws.com) or alarm_topic_arn."
  }
}

resource "aws_cloudwatch_log_metric_filter" "this" {
  for_each = var.alarms_enabled ? local.log_metrics : {}

  name           = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  log_group_name = aws_cloudwatch_log_group.daemon.name
  pattern        = each.value.pattern

  metric_transformation {
    name          = each.value.metric
    namespace     = local.metric_ns
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.alarms_enabled ? local.metric_alarms : {}

  alarm_name          = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  period              = local.alarm_frequency
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  depends_on = [aws_cloudwatch_log_metric_filter.this]
}

# Running tasks below desired for 10 minutes (a crash loop, a task that cannot pull its image or start). ECS
# publishes task counts only through Container Insights (ECS/ContainerInsights RunningTaskCount and
# DesiredTaskCount by ClusterName and ServiceName; Amazon CloudWatch user guide, "Amazon ECS Container Insights
# metrics"); AWS/ECS has CPU and memory only. So it needs container_insights (or, with ecs_cluster_arn, a cluster
# that has it on).
resource "aws_cloudwatch_metric_alarm" "tasks_below_desired" {
  count = var.alarms_enabled && var.container_insights ? 1 : 0

  alarm_name          = "${var.name_prefix}-tasks-below-desired"
  alarm_description   = "Fewer rotaudit tasks run than desired: `aws ecs describe-services` shows why (stopped reason, events)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 2
  treat_missing_data  = "breaching" # Container Insights reports 0 running tasks; no data at all is no service
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "missing"
    expression  = "desired - running"
    label       = "Tasks missing"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { desired = "DesiredTaskCount", running = "RunningTaskCount" }
    content {
      id = metric_query.key
      metric {
        namespace   = "ECS/ContainerInsights"
        metric_name = metric_query.value
        dimensions  = local.ecs_dimensions
        period      = local.alarm_frequency
        stat        = "Average"
      }
    }
  }
}

# Saved Logs Insights queries (CloudWatch console: Logs Insights, "Saved queries", folder name_prefix).
resource "aws_cloudwatch_query_definition" "this" {
  for_each = local.saved_queries

  name            = "${var.name_prefix}/${each.key}"
  log_group_names = [aws_cloudwatch_log_group.daemon.name]
  query_string    = trimspace(each.value)
}

locals {
  saved_queries = {
    "event-path"                   = <<-QUERY
      # One rotation's path through rotaudit: replace ROTATION_ID. Events, remediation and notifications.
      fields @timestamp, event, level, event_name, secret_name, outcome, verdict, stage, reason, result, error
      | filter rotation_id = "ROTATION_ID" or failed_rotation_id = "ROTATION_ID"
      | sort @timestamp asc
      | limit 200
    QUERY
    "rejections-by-reason"         = <<-QUERY
      # Messages the daemon dead-lettered, by reason (see `rotaudit dlq list` for the messages themselves).
      fields @timestamp, reason, detail
      | filter event = "message.rejected"
      | stats count(*) as rejected, latest(detail) as last_detail by reason
      | sort rejected desc
    QUERY
    "remediations-needing-a-human" = <<-QUERY
      # Failed rotations remediation escalated or could not finish: act on these.
      fields @timestamp, event, secret_name, rotation_id, reason, error
      | filter event in ["remediation.escalated", "remediation.failed", "remediation.pass_failed", "remediation.success_unconfirmed"]
      | sort @timestamp desc
      | limit 100
    QUERY
    "errors"                       = <<-QUERY
      # The daemon's ERROR and WARNING lines, newest first.
      fields @timestamp, level, component, event, error
      | filter level in ["error", "warning"]
      | sort @timestamp desc
      | limit 200
    QUERY
  }
}
