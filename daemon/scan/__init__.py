"""The age scan: pure rules, the scanner, its rows and run records, the window lease, its metrics."""
