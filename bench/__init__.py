"""`make bench` (`python -m bench`): the ingest, age-scan and lifecycle benchmarks, and their one results file.

- ingest: `bench.ingest` is its entry point; `bench.workload` builds the events and resources, `bench.harness` runs
  the emulator and one contender at a time and measures them, `bench.contenders` starts each contender as a
  subprocess, `bench.report` turns figures into ratios and tables. `bench.baseline_consumer` and
  `bench.ceiling_consumer` are two of the contenders.
- age scan: `bench.scan`, on `bench.scan_emulator` (the emulator seeded in-process with thousands of secrets);
  `bench.scan_contender` runs rotaudit's scanner or the seed's handler (`bench.seed_scan`) in a process of its own.
- lifecycle: `bench.lifecycle` (time to ready, idle and loaded memory, time to exit on SIGTERM).
- `bench.results` writes bench/results.json, the README's table (bench/results.md) and bench/results-detail.md.
"""
