"""Security Hub findings (ROTAUDIT_SECURITYHUB): pure ASFF builders, the batching publisher, its metrics."""
