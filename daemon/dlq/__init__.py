"""The dead-letter queue: reading it without consuming it, replaying it, and the depth and age gauges."""
