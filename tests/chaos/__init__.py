"""The chaos run (`python -m tests.chaos`, `make chaos`): replicas killed, stalled and restarted under AWS faults.

`fault_proxy` answers a share of AWS calls with throttles and 5xx errors (before or after the emulator executes
them); `workload` builds the events and secrets; `processes` starts and stops the emulator, the proxy and the
replicas; `harness` runs the timeline; `checks` reads the books at the end.
"""
