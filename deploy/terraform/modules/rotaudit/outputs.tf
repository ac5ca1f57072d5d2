# The same keys `rotaudit provision` prints, and the ECS side.

output "queue_url" {
  description = "URL of the rotation-event queue (ROTAUDIT_QUEUE_URL)."
  value       = aws_sqs_queue.events.url
}
output "queue_arn" {
  description = "ARN of the rotation-event queue, the rules' target."
  value       = aws_sqs_queue.events.arn
}
output "dlq_url" {
  description = "URL of the dead-letter queue (ROTAUDIT_DLQ_URL; `rotaudit dlq` reads it)."
  value       = aws_sqs_queue.dlq.url
}
output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}
output "table_name" {
  description = "Name of the audit table (ROTAUDIT_AUDIT_TABLE; the CLI's --table)."
  value       = aws_dynamodb_table.audit.name
}
output "table_arn" {
  description = "ARN of the audit table."
  value       = aws_dynamodb_table.audit.arn
}
output "topic_arn" {
  description = "ARN of the SNS topic remediation, sync and the CloudWatch alarms notify."
  value       = aws_sns_topic.notifications.arn
}
output "rule_name" {
  description = "Name of the EventBridge rule routing rotation events to the queue."
  value       = aws_cloudwatch_event_rule.this["rotation"].name
}
output "rule_arn" {
  description = "ARN of the rotation-event rule."
  value       = aws_cloudwatch_event_rule.this["rotation"].arn
}
output "label_rule_name" {
  description = "Name of the EventBridge rule routing \"Secret Label Updated\" events to the queue."
  value       = aws_cloudwatch_event_rule.this["label"].name
}
output "label_rule_arn" {
  description = "ARN of the label rule."
  value       = aws_cloudwatch_event_rule.this["label"].arn
}
output "probe_rule_name" {
  description = "Name of the EventBridge rule that routes `rotaudit doctor --probe` events to the queue."
  value       = aws_cloudwatch_event_rule.this["probe"].name
}
output "probe_rule_arn" {
  description = "ARN of the doctor's probe rule."
  value       = aws_cloudwatch_event_rule.this["probe"].arn
}
output "region" {
  description = "Region of the stack."
  value       = var.region
}
output "cluster_name" {
  description = "Name of the ECS cluster the service runs in (the module's own, or ecs_cluster_arn's)."
  value       = local.cluster_name
}
output "cluster_arn" {
  description = "ARN of the ECS cluster the service runs in."
  value       = local.cluster_arn
}
output "service_name" {
  description = "Name of the daemon's ECS service."
  value       = aws_ecs_service.daemon.name
}
output "task_definition_arn" {
  description = "ARN of the daemon's task definition (this revision)."
  value       = aws_ecs_task_definition.daemon.arn
}
output "task_role_arn" {
  description = "ARN of the task role: what the daemon may do (see the module README)."
  value       = aws_iam_role.task.arn
}
output "execution_role_arn" {
  description = "ARN of the execution role: what ECS needs to start the container."
  value       = aws_iam_role.execution.arn
}
output "log_group_name" {
  description = "CloudWatch Logs group of the daemon's JSON logs (the saved Logs Insights queries read it)."
  value       = aws_cloudwatch_log_group.daemon.name
}
output "subnet_ids" {
  description = "Subnets the tasks run in (given, or created by the module)."
  value       = local.subnet_ids
}
output "security_group_ids" {
  description = "Security groups of the tasks (given, or created by the module)."
  value       = local.security_group_ids
}
output "alarm_arns" {
  description = "CloudWatch alarms (name -> ARN) notifying the topic; empty when alarms_enabled is false."
  value       = { for alarm in concat(values(aws_cloudwatch_metric_alarm.this), aws_cloudwatch_metric_alarm.tasks_below_desired) : alarm.alarm_name => alarm.arn }
}
output "query_definition_ids" {
  description = "Saved CloudWatch Logs Insights queries on the daemon's log group (name -> id)."
  value       = { for key, query in aws_cloudwatch_query_definition.this : query.name => query.query_definition_id }
}
output "trail_arn" {
  description = "ARN of the trail (create_cloudtrail), else null."
  value       = var.create_cloudtrail ? aws_cloudtrail.this[0].arn : null
}
output "trail_bucket" {
  description = "Bucket of the trail's log files (create_cloudtrail), else null."
  value       = var.create_cloudtrail ? aws_s3_bucket.trail[0].id : null
}
output "event_bus_arn" {
  description = "This region's default bus: the target of modules/forward-events in the source regions."
  value       = local.event_bus_arn
}
output "event_patterns" {
  description = "The rules' event patterns (rule key -> JSON), for modules/forward-events (not the doctor's probe)."
  value       = { for key, rule in local.event_rules : key => jsonencode(rule.pattern) if key != "probe" }
}
output "event_sources" {
  description = "Where modules/forward-events must run: one instance per (account, region)."
  value       = [for source in var.event_sources : { account_id = source.account_id == "" ? local.account_id : source.account_id, regions = source.regions }]
}
