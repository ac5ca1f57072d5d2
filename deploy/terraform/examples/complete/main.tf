# A root module that deploys rotaudit with modules/rotaudit: the provider is configured here, never in the
# module. deploy/local.sh applies this example on moto, its provider settings merged over the block below (see
# local.sh); copy it as the start of your own root.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Application = "rotaudit", Stack = var.name_prefix }, var.tags)
  }
}

module "rotaudit" {
  source = "../../modules/rotaudit"

  name_prefix = var.name_prefix
  region      = var.region
  image       = var.image

  # Network and cluster: null lets the module create a small VPC, a security group and a cluster.
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
  ecs_cluster_arn    = var.ecs_cluster_arn

  scan_schedule             = var.scan_schedule
  alert_emails              = var.alert_emails
  table_deletion_protection = var.table_deletion_protection
  rotation_function_arns    = var.rotation_function_arns
  create_cloudtrail         = var.create_cloudtrail
  event_sources             = var.event_sources
  extra_environment         = var.extra_environment
  kms_key_arn               = var.kms_key_arn
}
