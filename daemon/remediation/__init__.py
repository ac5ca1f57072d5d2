"""Remediation of failed rotations: pure plan and outcome, fenced claims, budget, notifications, the retry job."""
