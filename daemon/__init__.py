"""rotaudit: keeps AWS Secrets Manager rotations honest."""

__version__ = "0.1.0"
