# The example's inputs: the few most deployments set; modules/rotaudit/README.md lists every input of the module.

variable "region" {
  description = "AWS region of the stack."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "rotaudit"
}

variable "image" {
  description = "The rotaudit container image (repository:tag or @digest)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks; null: the module creates a VPC."
  type        = list(string)
  default     = null
}

variable "security_group_ids" {
  description = "Security groups of the tasks; null: the module creates one (HTTPS egress only)."
  type        = list(string)
  default     = null
}

variable "ecs_cluster_arn" {
  description = "An existing ECS cluster; null: the module creates one."
  type        = string
  default     = null
}

variable "scan_schedule" {
  description = "ROTAUDIT_SCAN_SCHEDULE (EventBridge syntax)."
  type        = string
  default     = "rate(1 hour)"
}

variable "alert_emails" {
  description = "Email addresses subscribed to the notification topic."
  type        = list(string)
  default     = []
}

variable "table_deletion_protection" {
  description = "Protect the audit table from deletion."
  type        = bool
  default     = true
}

variable "rotation_function_arns" {
  description = "The rotation Lambda functions of managed secrets (remediation retries rotations through them)."
  type        = list(string)
  default     = []
}

variable "create_cloudtrail" {
  description = "Create a multi-region trail (only where no trail logs the region yet)."
  type        = bool
  default     = false
}

variable "event_sources" {
  description = "Other regions and accounts whose Secrets Manager events are forwarded here (modules/forward-events)."
  type = list(object({
    account_id = optional(string, "")
    regions    = list(string)
  }))
  default = []
}

variable "extra_environment" {
  description = "More ROTAUDIT_* settings for the container."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the table, log group and topic (needed for the CloudWatch alarms to notify the topic)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource (merged with Application and Stack), through the provider's default_tags."
  type        = map(string)
  default     = {}
}
