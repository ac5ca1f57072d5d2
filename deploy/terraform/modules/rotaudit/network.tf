# The tasks' network when the caller brings none (subnet_ids null): a small VPC with two public subnets in two
# zones and an internet gateway, so the daemon reaches the AWS APIs without a NAT gateway (tasks get a public IP
# and accept no inbound traffic). Security groups (security_group_ids null): HTTPS egress only, in the subnets' VPC.

locals {
  create_network        = var.subnet_ids == null
  create_security_group = var.security_group_ids == null
  subnet_ids            = local.create_network ? aws_subnet.tasks[*].id : var.subnet_ids
  vpc_id                = local.create_network ? aws_vpc.this[0].id : (local.create_security_group ? data.aws_subnet.given[0].vpc_id : null)
  security_group_ids    = local.create_security_group ? [aws_security_group.tasks[0].id] : var.security_group_ids
}

data "aws_availability_zones" "available" {
  count = local.create_network ? 1 : 0
  state = "available"

  #checkov:skip=CKV_AWS_394:Only the first two zones of the sorted list are used (subnets by count.index); a zone AWS adds later sorts after them, so the subnets never move.
}

data "aws_subnet" "given" {
  count = !local.create_network && local.create_security_group ? 1 : 0
  id    = var.subnet_ids[0]
}

resource "aws_vpc" "this" {
  count                = local.create_network ? 1 : 0
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name_prefix }

  #checkov:skip=CKV2_AWS_11:The VPC carries only the daemon's HTTPS calls to AWS APIs (CloudTrail records those); where flow logs are required, pass subnet_ids of a logged VPC.
}

# No rule in the default group: nothing uses it.
resource "aws_default_security_group" "this" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.this[0].id
}

resource "aws_internet_gateway" "this" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = { Name = var.name_prefix }
}

resource "aws_subnet" "tasks" {
  count             = local.create_network ? 2 : 0
  vpc_id            = aws_vpc.this[0].id
  cidr_block        = cidrsubnet(var.vpc_cidr, 1, count.index)
  availability_zone = data.aws_availability_zones.available[0].names[count.index]
  tags              = { Name = "${var.name_prefix}-tasks-${count.index}" }
}

resource "aws_route_table" "tasks" {
  count  = local.create_network ? 1 : 0
  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${var.name_prefix}-tasks" }
}

resource "aws_route" "internet" {
  count                  = local.create_network ? 1 : 0
  route_table_id         = aws_route_table.tasks[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "tasks" {
  count          = local.create_network ? 2 : 0
  subnet_id      = aws_subnet.tasks[count.index].id
  route_table_id = aws_route_table.tasks[0].id
}

resource "aws_security_group" "tasks" {
  count       = local.create_security_group ? 1 : 0
  name        = "${var.name_prefix}-tasks"
  description = "rotaudit daemon: HTTPS to the AWS APIs, nothing inbound"
  vpc_id      = local.vpc_id

  egress {
    description = "HTTPS to the AWS APIs"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
}
