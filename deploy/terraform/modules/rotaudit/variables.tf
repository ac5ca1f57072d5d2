# Inputs. Names of AWS resources all start with var.name_prefix, as `rotaudit provision --prefix` names them.

variable "name_prefix" {
  description = "Prefix of every resource name (queue, DLQ, table, topic, rules, cluster, roles, log group)."
  type        = string
  default     = "rotaudit"

  validation {
    # IAM role names are at most 64 characters and the longest suffix here is "-execution".
    condition     = can(regex("^[a-z][a-z0-9-]{1,39}$", var.name_prefix))
    error_message = "name_prefix must be 2-40 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the stack: the configured provider's region (checked), from which the policies' ARNs are built at plan time."
  type        = string
}

variable "image" {
  description = "The rotaudit container image (repository:tag or @digest)."
  type        = string
}

variable "desired_count" {
  description = "Replicas of the daemon. Events are recorded once and scans run once per window whatever the count."
  type        = number
  default     = 1

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a whole number, 0 or more."
  }
}

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Fargate task memory, MiB."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64, matching the image."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "max_age_days" {
  description = "ROTAUDIT_MAX_AGE_DAYS: a managed secret older than this needs rotation."
  type        = number
  default     = 30

  validation {
    condition     = var.max_age_days >= 1 && floor(var.max_age_days) == var.max_age_days
    error_message = "max_age_days must be a whole number of days, 1 or more."
  }
}

variable "scan_schedule" {
  description = "ROTAUDIT_SCAN_SCHEDULE, EventBridge syntax in UTC: rate(N minutes|hours|days) or cron(...). The daemon runs it on its own timer."
  type        = string
  default     = "rate(1 hour)"

  validation {
    # As EventBridge spells it: rate(1 hour) but rate(2 hours). The daemon re-checks it at start-up (exit 78).
    condition     = can(regex("^(rate\\(1 (minute|hour|day)\\)|rate\\(([2-9]|[1-9][0-9]+) (minutes|hours|days)\\)|cron\\(.+\\))$", var.scan_schedule))
    error_message = "scan_schedule must be rate(1 minute|hour|day), rate(N minutes|hours|days) or cron(...)."
  }
}

variable "managed_tag" {
  description = "The tag that marks a secret as rotaudit's to scan (ROTAUDIT_SCAN_TAG) and to write: the task role may change only secrets carrying it."
  type        = object({ key = string, value = string })
  default     = { key = "Managed", value = "true" }

  validation {
    # Both are ListSecrets filter values (1-512 of this alphabet); a leading '!' would make AWS negate the filter.
    condition = alltrue([
      for part in [var.managed_tag.key, var.managed_tag.value] :
      can(regex("^[a-zA-Z0-9 :_@/+=.!-]{1,512}$", part)) && !startswith(part, "!")
    ])
    error_message = "managed_tag key and value must be 1-512 of letters, digits, space and : _ @ / + = . - !, not starting with '!'."
  }
}

variable "remediation_mode" {
  description = "ROTAUDIT_REMEDIATION_MODE: apply, dry-run or off."
  type        = string
  default     = "apply"

  validation {
    condition     = contains(["apply", "dry-run", "off"], var.remediation_mode)
    error_message = "remediation_mode must be apply, dry-run or off."
  }
}

variable "allowed_accounts" {
  description = "ROTAUDIT_ALLOWED_ACCOUNTS: account ids whose events are accepted (empty: any)."
  type        = list(string)
  default     = []
}

variable "http_port" {
  description = "ROTAUDIT_HTTP_PORT: /metrics, /healthz and /readyz."
  type        = number
  default     = 9108
}

variable "drain_timeout_s" {
  description = "ROTAUDIT_DRAIN_TIMEOUT_S: time in-flight work gets after SIGTERM. Must stay below stop_timeout_s."
  type        = number
  default     = 20
}

variable "stop_timeout_s" {
  description = "ECS stopTimeout: seconds between SIGTERM and SIGKILL (Fargate allows 2-120)."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout_s >= 2 && var.stop_timeout_s <= 120
    error_message = "stop_timeout_s must be between 2 and 120 (Fargate's range)."
  }
}

variable "extra_environment" {
  description = "More ROTAUDIT_* settings for the container (e.g. ROTAUDIT_SYNC_PAIRS). Never put a secret value here."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : startswith(k, "ROTAUDIT_")])
    error_message = "extra_environment keys must start with ROTAUDIT_."
  }
}

variable "ecs_cluster_arn" {
  description = "An existing ECS cluster to run the service in. Null: the module creates one named name_prefix (with container_insights)."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets of the service's tasks (awsvpc); they need a route to the AWS APIs (NAT gateway or VPC endpoints). Null: the module creates a small VPC (vpc_cidr) with two public subnets and gives tasks a public IP."
  type        = list(string)
  default     = null
}

variable "security_group_ids" {
  description = "Security groups of the service's tasks. The daemon needs egress to AWS APIs (HTTPS) and ingress only on http_port from the scraper. Null: the module creates one allowing HTTPS egress only, in the subnets' VPC."
  type        = list(string)
  default     = null
}

variable "vpc_cidr" {
  description = "CIDR of the VPC the module creates when subnet_ids is null (split into two subnets in two zones)."
  type        = string
  default     = "10.42.0.0/24"
}

variable "assign_public_ip" {
  description = "Give tasks a public IP (only for subnets without a NAT gateway or VPC endpoints). Always on in the VPC the module creates."
  type        = bool
  default     = false
}

variable "alert_emails" {
  description = "Email addresses subscribed to the notification topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "queue_senders" {
  description = "IAM principal ARNs (roles or users) that may send to the event queue and its DLQ besides the rules and the task role: e.g. the operators who run `rotaudit dlq replay`. Everyone else is denied, so no principal of the account can inject a forged rotation event."
  type        = list(string)
  default     = []
}

variable "enable_redrive_allow_policy" {
  description = "Let only this stack's queue use the DLQ (RedriveAllowPolicy). Off by default: moto, which deploy/local.sh runs on, hangs on it."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention of the daemon's log group."
  type        = number
  default     = 365
}

variable "kms_key_arn" {
  description = "Optional customer-managed KMS key for the audit table, the log group, the topic and (create_cloudtrail) the trail and its bucket. Its key policy must admit DynamoDB, CloudWatch Logs (logs.<region>.amazonaws.com), SNS and, for the trail, CloudTrail. Null: AWS-managed keys (SSE-S3 for the trail's bucket)."
  type        = string
  default     = null
}

variable "table_deletion_protection" {
  description = "Protect the audit table from deletion (turn off only for throw-away stacks)."
  type        = bool
  default     = true
}

variable "container_insights" {
  description = "CloudWatch Container Insights on the cluster."
  type        = bool
  default     = true
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys of the sync pairs' secrets (kms:Decrypt to read them, kms:GenerateDataKey to write targets; through Secrets Manager only). Only sync reads or writes values."
  type        = list(string)
  default     = []
}

variable "scan_enabled" {
  description = "ROTAUDIT_SCAN_ENABLED: the periodic age scan. Off: the task role gets none of the scan's permissions."
  type        = bool
  default     = true
}

variable "scan_targets" {
  description = "ROTAUDIT_SCAN_TARGETS: other accounts (role_arn, assumed through STS) and regions the scan covers. When set it is the whole list: add an entry without role_arn to keep this account. The task role may assume these roles and list versions of managed secrets in these regions of this account."
  type = list(object({
    role_arn = optional(string, "")
    regions  = optional(list(string), [])
  }))
  default = []
}

variable "sync_pairs" {
  description = "ROTAUDIT_SYNC_PAIRS: derived secrets (see the README). source and target are secret names (this account and region) or full ARNs. The task role may read values of these secrets only, write only the targets, and redeploy only the ecs_services (cluster/service) named here."
  type = list(object({
    name         = string
    source       = string
    target       = string
    host         = optional(string, "")
    port         = optional(number, 0)
    dbname       = optional(string, "")
    username     = optional(string, "")
    sslmode      = optional(string, "require")
    template     = optional(string, "")
    ecs_services = optional(list(string), [])
  }))
  default = []
}

variable "rotation_function_arns" {
  description = "The rotation Lambda functions of managed secrets (ARNs or patterns). RotateSecret, which remediation retries with, also needs lambda:InvokeFunction on them (RotateSecret API reference). Required when remediation_mode is apply."
  type        = list(string)
  default     = []
}

variable "create_cloudtrail" {
  description = "Create a multi-region CloudTrail trail and its encrypted, private S3 bucket. CloudTrail-delivered rotation events need a trail logging in the account and region; leave off where an organization or account trail already logs (the daemon reports rotaudit_cloudtrail_logging either way)."
  type        = bool
  default     = false
}

variable "cloudtrail_retention_days" {
  description = "Days the trail's log files are kept in its bucket (create_cloudtrail)."
  type        = number
  default     = 365
}

variable "event_sources" {
  description = "Other regions and accounts whose rotations rotaudit audits: each runs modules/forward-events (with a provider for it), whose rules forward Secrets Manager events to this region's default bus. account_id empty: this account. Other accounts are allowed to put Secrets Manager events on the bus, and are added to ROTAUDIT_ALLOWED_ACCOUNTS when allowed_accounts is set."
  type = list(object({
    account_id = optional(string, "")
    regions    = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for source in var.event_sources : source.account_id == "" || can(regex("^[0-9]{12}$", source.account_id))])
    error_message = "event_sources account_id must be empty (this account) or a 12-digit account id."
  }
}

variable "automation_document_arns" {
  description = "SSM Automation documents remediation may start (the rotaudit:restart-document tags), as automation-definition ARNs."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories the execution role may pull the image from (empty for a public image)."
  type        = list(string)
  default     = []
}

variable "alarms_enabled" {
  description = "CloudWatch alarms on the DLQ, the service's running tasks, the daemon's errors and failed remediations, notifying the topic (see alarms.tf). For teams without Prometheus; harmless beside it."
  type        = bool
  default     = true
}

variable "alarm_dlq_age_s" {
  description = "Alarm when the oldest message in the DLQ is older than this many seconds."
  type        = number
  default     = 3600
}

variable "alarm_error_logs" {
  description = "Alarm when the daemon logs more than this many ERROR lines in 5 minutes."
  type        = number
  default     = 0
}

variable "alarm_topic_arn" {
  description = "SNS topic the CloudWatch alarms notify instead of the stack's topic (which CloudWatch can publish to only when kms_key_arn is a customer-managed key admitting cloudwatch.amazonaws.com)."
  type        = string
  default     = null
}

variable "securityhub_findings" {
  description = "ROTAUDIT_SECURITYHUB: import findings (secrets needing rotation, failed rotations, escalations) into this region's Security Hub. On: the task role may call securityhub:BatchImportFindings on this account's default product and securityhub:GetFindings on its hub. Security Hub must be enabled in the region."
  type        = bool
  default     = false
}
