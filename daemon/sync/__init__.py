"""Derived secrets kept in sync with their sources: rendering (pure) and the syncer that reads and writes."""
