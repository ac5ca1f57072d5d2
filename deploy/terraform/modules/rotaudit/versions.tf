# A module: no provider block. The caller configures the AWS provider (region, credentials, default_tags) and
# passes it in; see examples/complete. The AWS provider 5.x and 6.x lines both work (every argument used here
# exists in both); init works offline from a filesystem mirror (`terraform init -plugin-dir=...`).
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7"
    }
  }
}
