# Where the stack is: account and partition, for the ARNs the policies name.
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# The provider's region: var.region must name it (the policies' ARNs are built from var.region at plan time).
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}
