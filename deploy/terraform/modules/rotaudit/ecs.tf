# The daemon on ECS Fargate: cluster, log group, task definition and service.

locals {
  container_name = "rotaudit"
  log_group_name = "/ecs/${var.name_prefix}"

  # The README's configuration table; anything else goes through var.extra_environment, which may not override
  # these: the task role's permissions are derived from the same variables.
  managed_environment = merge(
    {
      AWS_REGION                = var.region
      ROTAUDIT_QUEUE_URL        = aws_sqs_queue.events.url
      ROTAUDIT_DLQ_URL          = aws_sqs_queue.dlq.url
      ROTAUDIT_AUDIT_TABLE      = aws_dynamodb_table.audit.name
      ROTAUDIT_SNS_TOPIC_ARN    = aws_sns_topic.notifications.arn
      ROTAUDIT_SCAN_SCHEDULE    = var.scan_schedule
      ROTAUDIT_MAX_AGE_DAYS     = tostring(var.max_age_days)
      ROTAUDIT_SCAN_TAG         = "${var.managed_tag.key}=${var.managed_tag.value}"
      ROTAUDIT_REMEDIATION_MODE = var.remediation_mode
      ROTAUDIT_DRAIN_TIMEOUT_S  = tostring(var.drain_timeout_s)
      ROTAUDIT_HTTP_PORT        = tostring(var.http_port)
      ROTAUDIT_LOG_FORMAT       = "json"
      ROTAUDIT_SCAN_ENABLED     = tostring(var.scan_enabled)
    },
    # Forwarded events carry their own account: a source account must be allowed too.
    length(var.allowed_accounts) > 0 ? { ROTAUDIT_ALLOWED_ACCOUNTS = join(",", distinct(concat(var.allowed_accounts, local.forwarding_accounts))) } : {},
    length(var.sync_pairs) > 0 ? { ROTAUDIT_SYNC_PAIRS = jsonencode(var.sync_pairs) } : {},
    length(var.scan_targets) > 0 ? { ROTAUDIT_SCAN_TARGETS = jsonencode(var.scan_targets) } : {},
    var.securityhub_findings ? { ROTAUDIT_SECURITYHUB = "true" } : {},
  )
  environment = merge(local.managed_environment, var.extra_environment)
  # Settings the task role is derived from: never through extra_environment, whatever the defaults leave out.
  role_settings = ["ROTAUDIT_SYNC_PAIRS", "ROTAUDIT_SCAN_TARGETS", "ROTAUDIT_SCAN_ENABLED", "ROTAUDIT_REMEDIATION_MODE", "ROTAUDIT_SCAN_TAG", "ROTAUDIT_SECURITYHUB"]

  # The Dockerfile's HEALTHCHECK: ECS honours only the task definition's.
  health_command = "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ROTAUDIT_HTTP_PORT', '9108'), timeout=4)"

  container = {
    name                   = local.container_name
    image                  = var.image
    essential              = true
    user                   = "10001:10001" # the image's rotaudit user
    readonlyRootFilesystem = true
    privileged             = false
    stopTimeout            = var.stop_timeout_s
    portMappings           = [{ name = "metrics", containerPort = var.http_port, protocol = "tcp" }]
    environment            = [for name in sort(keys(local.environment)) : { name = name, value = local.environment[name] }]
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    healthCheck = {
      command     = ["CMD", "python3", "-c", local.health_command]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = local.log_group_name
        awslogs-region        = var.region
        awslogs-stream-prefix = "rotaudit"
      }
    }
  }
}

resource "aws_cloudwatch_log_group" "daemon" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  #checkov:skip=CKV_AWS_158:A customer-managed key is optional (var.kms_key_arn); log lines carry ids and names only, never secret values, and CloudWatch Logs encrypts them at rest by default.
  kms_key_id = var.kms_key_arn
}

# The cluster: var.ecs_cluster_arn's, else one of the module's own.
locals {
  cluster_arn  = var.ecs_cluster_arn != null ? var.ecs_cluster_arn : aws_ecs_cluster.this[0].arn
  cluster_name = var.ecs_cluster_arn != null ? element(split("/", var.ecs_cluster_arn), 1) : aws_ecs_cluster.this[0].name
}

resource "aws_ecs_cluster" "this" {
  count = var.ecs_cluster_arn == null ? 1 : 0
  name  = var.name_prefix

  setting {
    name  = "containerInsights"
    value = var.container_insights ? "enabled" : "disabled"
  }
}

resource "aws_ecs_task_definition" "daemon" {
  family                   = "${var.name_prefix}-daemon"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions    = jsonencode([local.container])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Scratch space on Fargate's ephemeral storage: the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  lifecycle {
    precondition {
      condition     = var.drain_timeout_s < var.stop_timeout_s
      error_message = "drain_timeout_s must be below stop_timeout_s, or ECS kills the daemon mid-drain."
    }
    precondition {
      condition     = length(setintersection(keys(var.extra_environment), concat(keys(local.managed_environment), local.role_settings))) == 0
      error_message = "extra_environment may not set what a variable of this module sets (the task role follows those variables): use sync_pairs, scan_targets, scan_enabled, remediation_mode, managed_tag, ... instead."
    }
  }
}

resource "aws_ecs_service" "daemon" {
  name                               = "${var.name_prefix}-daemon"
  cluster                            = local.cluster_arn
  task_definition                    = aws_ecs_task_definition.daemon.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  propagate_tags                     = "SERVICE"
  availability_zone_rebalancing      = "ENABLED" # replicas spread across the subnets' zones

  network_configuration {
    subnets          = local.subnet_ids
    security_groups  = local.security_group_ids
    assign_public_ip = var.assign_public_ip || local.create_network
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    precondition {
      condition     = var.region == data.aws_region.current.name
      error_message = "region must be the AWS provider's region: the task role's ARNs and the daemon's AWS_REGION are built from it."
    }
  }
}
