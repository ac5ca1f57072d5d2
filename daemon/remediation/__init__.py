"""Remediation of failed rotations: the pure plan, fenced claims, the budget, notifications, the retry job."""
