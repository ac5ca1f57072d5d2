# Every output of the module, under the same names (deploy/local.sh and the tests read them).

output "queue_url" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.queue_url
}

output "queue_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.queue_arn
}

output "dlq_url" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.dlq_url
}

output "dlq_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.dlq_arn
}

output "table_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.table_name
}

output "table_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.table_arn
}

output "topic_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.topic_arn
}

output "rule_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.rule_name
}

output "rule_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.rule_arn
}

output "label_rule_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.label_rule_name
}

output "label_rule_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.label_rule_arn
}

output "probe_rule_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.probe_rule_name
}

output "probe_rule_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.probe_rule_arn
}

output "region" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.region
}

output "cluster_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.cluster_name
}

output "cluster_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.cluster_arn
}

output "service_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.service_name
}

output "task_definition_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.task_definition_arn
}

output "task_role_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.task_role_arn
}

output "execution_role_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.execution_role_arn
}

output "log_group_name" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.log_group_name
}

output "subnet_ids" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.subnet_ids
}

output "security_group_ids" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.security_group_ids
}

output "alarm_arns" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.alarm_arns
}

output "query_definition_ids" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.query_definition_ids
}

output "trail_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.trail_arn
}

output "trail_bucket" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.trail_bucket
}

output "event_bus_arn" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.event_bus_arn
}

output "event_patterns" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.event_patterns
}

output "event_sources" {
  description = "See modules/rotaudit/outputs.tf."
  value       = module.rotaudit.event_sources
}
