# The AWS provider 5.x line; init works offline from a filesystem mirror (`terraform init -plugin-dir=...`).
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Application = "rotaudit", Stack = var.name_prefix }, var.tags)
  }
}
