"""A rotation engine stand-in for the emulator: Secrets Manager's RotateSecret, its retries and a rotation Lambda.

moto's own RotateSecret is wrong, not just lax (AWS-FACTS §7): it refuses when AWSPENDING sits on AWSCURRENT,
accepts it dangling, and without a Lambda promotes the new version at once; rotation Lambdas never run, so no
rotation can fail. This package runs rotation the way AWS does, so remediation can be proved against it:

- `engine`: RotateSecret's checks and bookkeeping, then the four steps asynchronously, with Secrets Manager's
  own retries; `scheduler`: the background thread they run on.
- `function`: rotation function stand-ins modelled on AWS's templates (single user, alternating users, generic),
  with injected failures; `database`: the small fake database they rotate.
- `client`: the Secrets Manager calls a function makes, served from moto's backend in this process.
- `events`: each attempt's outcome as a CloudTrail service event, and each label move as a native `Secret Label
  Updated` event, published on EventBridge's default bus.
- `control`: the emulator's `/_rotaudit/rotation/*` endpoints (configure, state), never showing a password.

Every behaviour names the documented fact it follows; what AWS does not document is marked "inferred".
The patch that installs it is `daemon.devtools.patches.rotation`.
"""
