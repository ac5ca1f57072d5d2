# The same keys `rotaudit provision` prints, and the ECS side.

output "queue_url" {
  value = aws_sqs_queue.events.url
}
output "queue_arn" {
  value = aws_sqs_queue.events.arn
}
output "dlq_url" {
  value = aws_sqs_queue.dlq.url
}
output "dlq_arn" {
  value = aws_sqs_queue.dlq.arn
}
output "table_name" {
  value = aws_dynamodb_table.audit.name
}
output "table_arn" {
  value = aws_dynamodb_table.audit.arn
}
output "topic_arn" {
  value = aws_sns_topic.notifications.arn
}
output "rule_name" {
  value = aws_cloudwatch_event_rule.this["rotation"].name
}
output "rule_arn" {
  value = aws_cloudwatch_event_rule.this["rotation"].arn
}
output "label_rule_name" {
  value = aws_cloudwatch_event_rule.this["label"].name
}
output "label_rule_arn" {
  value = aws_cloudwatch_event_rule.this["label"].arn
}
output "probe_rule_name" {
  value = aws_cloudwatch_event_rule.this["probe"].name
}
output "probe_rule_arn" {
  value = aws_cloudwatch_event_rule.this["probe"].arn
}
output "region" {
  value = var.region
}
output "cluster_name" {
  value = aws_ecs_cluster.this.name
}
output "service_name" {
  value = aws_ecs_service.daemon.name
}
output "task_definition_arn" {
  value = aws_ecs_task_definition.daemon.arn
}
output "task_role_arn" {
  value = aws_iam_role.task.arn
}
output "execution_role_arn" {
  value = aws_iam_role.execution.arn
}
output "log_group_name" {
  value = aws_cloudwatch_log_group.daemon.name
}
output "trail_arn" {
  value = var.create_cloudtrail ? aws_cloudtrail.this[0].arn : null
}
output "trail_bucket" {
  value = var.create_cloudtrail ? aws_s3_bucket.trail[0].id : null
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
