"""`rotaudit doctor`: can this deployment work? Config, resources, event routing, CloudTrail, IAM and scan roles.

Each module checks one group and returns `Check`s (`result`); `run.diagnose` runs them in order. Nothing here
changes the deployment, except `--probe` (`probe`), which puts one synthetic event on the default event bus.
"""
