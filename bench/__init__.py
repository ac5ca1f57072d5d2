"""`make bench` (`python -m bench`): the ingest, age-scan, lifecycle and latency benchmarks, and one results file.

- ingest: `bench.ingest` is its entry point; `bench.workload` builds the events and resources, `bench.harness` runs
  the emulator and one contender at a time and measures them, `bench.contenders` starts each contender as a
  subprocess, `bench.report` turns figures into ratios and tables. `bench.baseline_consumer` and
  `bench.ceiling_consumer` are two of the contenders.
- age scan: `bench.scan`, on `bench.scan_emulator` (the emulator seeded in-process with thousands of secrets);
  `bench.scan_contender` runs rotaudit's scanner or the seed's handler (`bench.seed_scan`) in a process of its own.
- lifecycle: `bench.lifecycle` (time to ready, idle and loaded memory, time to exit on SIGTERM).
- latency: `bench.latency` (queue to readable audit item on a running daemon, steady and burst), with
  `bench.latency_probe` (the emulator's own round trips; the table watcher) and `bench.latency_report` (its rows
  and the lag alert's derivation).
- `bench.results` writes bench/results.json, the README's table (bench/results.md) and bench/results-detail.md.
"""
