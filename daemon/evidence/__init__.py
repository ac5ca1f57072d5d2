"""`rotaudit evidence`: a period's rotation, remediation and compliance record, read from the audit table."""
