"""Derived secrets kept in sync with their sources: rendering (pure), the syncer that reads and writes, its metrics."""
