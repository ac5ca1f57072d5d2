"""The chaos run's remediation profile: rotations that really fail on the emulator's rotation stand-in, remediated by
replicas under SIGKILLs and faults, then the secrets' end state checked against the rules remediation keeps.

`scenarios` makes the secrets (one per failing step, strategy, AWSCURRENT-move opt-in and retry outcome),
`invariants` checks the end state, `run` drives it all (`python -m tests.chaos --remediation [--short]`).
"""
