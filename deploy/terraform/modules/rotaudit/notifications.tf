# The SNS topic remediation and sync notify through, and the people subscribed to it.

resource "aws_sns_topic" "notifications" {
  name              = "${var.name_prefix}-notifications"
  kms_master_key_id = coalesce(var.kms_key_arn, "alias/aws/sns")

  lifecycle {
    postcondition {
      condition     = self.arn == local.topic_arn
      error_message = "The task role names the topic by a built ARN (iam.tf local.topic_arn): it must be the topic's."
    }
  }
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.notifications.arn
  protocol  = "email"
  endpoint  = each.value
}
