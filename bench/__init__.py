"""The ingest benchmark behind `make bench`: rotaudit against a seed-style baseline and a raw ceiling.

`bench.ingest` is the entry point; `bench.workload` builds the events and resources, `bench.harness` runs the
emulator and one contender at a time and measures them, `bench.contenders` starts each contender as a
subprocess, `bench.report` turns figures into ratios, a table and results files. `bench.baseline_consumer`
and `bench.ceiling_consumer` are two of the contenders.
"""
