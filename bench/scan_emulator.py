"""The age-scan benchmark's emulator: the project's emulator with thousands of secrets seeded in-process, then served.

Creating 10,000 secrets through the HTTP API takes minutes, and AWS offers no way to make a secret old, so this
process starts `daemon.devtools.emulator.start_emulator` (the patched moto `make run` and the tests use) and writes the
secrets straight into moto's Secrets Manager backend with backdated dates, as `daemon.devtools.emulator.backdate_secret`
does for one. `plan_inventory` is pure and seeded: every run, and both contenders of a run, see the same secrets.

One change to moto, the one `tests/scan_support.true_version_dates` also makes: `ListSecretVersionIds` reports each
version's true `CreatedDate`, as AWS does, instead of "now" (AWS-FACTS §7), so the scanner's verdicts can be
checked against the inventory's.

    python -m bench.scan_emulator --port 0 [--latency-ms 20] [--secrets 10000] [--seed N]

Prints one JSON line ({"endpoint_url", "inventory"}) once it serves; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from daemon.devtools.emulator import start_emulator
from daemon.devtools.patches import PatchError
from daemon.errors import EXIT_OK, EXIT_STARTUP

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
DAY_S = 86_400
MAX_AGE_DAYS = 30
SEED = 20240213

# Share of the Managed=true secrets in each state, and whether a correct scan flags it (max age 30 days).
CATEGORIES: dict[str, tuple[float, bool]] = {
    "fresh_never_rotated": (0.25, False),  # created this month, rotation never configured
    "stale_never_rotated": (0.20, True),  # created months ago, never rotated
    "rotated_recently": (0.35, False),  # rotation on, last rotated this month
    "rotation_overdue": (0.08, True),  # rotation on, but NextRotationDate passed weeks ago
    "rotation_disabled_stale": (0.05, True),  # rotated once, then rotation turned off
    "tag_edited_stale": (0.04, True),  # old and never rotated; a recent tag edit moved LastChangedDate
    "manual_new_version": (0.02, False),  # never rotated, but someone put a new value this month
    "stuck_pending": (0.01, True),  # rotated this month, yet AWSPENDING sits on another version
}
# Secrets the scan must skip, as shares of the Managed=true count. `ManagedBy=true` passes the ListSecrets
# filters (prefix matches on key and value) and only an exact re-check excludes it.
DECOYS: dict[str, tuple[float, dict[str, str]]] = {
    "decoy_managed_by": (0.10, {"ManagedBy": "true"}),
    "decoy_managed_false": (0.05, {"Managed": "false"}),
    "decoy_untagged": (0.05, {}),
}


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One secret to seed: tags and dates in days before now (None: never)."""

    name: str
    category: str
    tags: dict[str, str]
    created_days: float
    changed_days: float
    current_version_days: float
    rotated_days: float | None = None
    rotation_enabled: bool = False
    rotation_requested: bool = False
    next_rotation_days: float | None = None  # days from now; negative is overdue
    previous_version_days: float | None = None
    pending: bool = False

    @property
    def managed(self) -> bool:
        return self.tags.get("Managed") == "true"


def _counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Whole numbers in proportion to `shares`, summing to round(total * sum(shares)) (largest remainder)."""
    exact = {name: total * share for name, share in shares.items()}
    counts = {name: int(value) for name, value in exact.items()}
    wanted = round(total * sum(shares.values()))
    for name in sorted(exact, key=lambda n: exact[n] - counts[n], reverse=True)[: wanted - sum(counts.values())]:
        counts[name] += 1
    return counts


def _spec(name: str, category: str, tags: dict[str, str], rng: random.Random) -> SecretSpec:
    u = rng.uniform
    if category in ("fresh_never_rotated", "decoy_managed_by", "decoy_managed_false", "decoy_untagged"):
        created = u(0.5, 29)
        return SecretSpec(name, category, tags, created, created, created)
    if category == "stale_never_rotated":
        created = u(31, 720)
        return SecretSpec(name, category, tags, created, created, created)
    if category == "tag_edited_stale":
        created = u(45, 720)
        return SecretSpec(name, category, tags, created, u(0.5, 10), created)
    if category == "manual_new_version":
        created, put = u(60, 720), u(0.5, 25)
        return SecretSpec(name, category, tags, created, put, put, previous_version_days=created)
    rotated = u(0.5, 29) if category in ("rotated_recently", "stuck_pending") else u(31, 365)
    enabled = category != "rotation_disabled_stale"
    next_days = (30 - rotated) if category != "rotation_overdue" else -(rotated - 30)
    return SecretSpec(
        name,
        category,
        tags,
        created_days=rotated + u(30, 400),
        changed_days=rotated,
        current_version_days=rotated,
        rotated_days=rotated,
        rotation_enabled=enabled,
        rotation_requested=True,
        next_rotation_days=next_days if enabled else None,
        previous_version_days=rotated + 30,
        pending=category == "stuck_pending",
    )


def plan_inventory(managed: int, seed: int = SEED) -> list[SecretSpec]:
    """`managed` Managed=true secrets in the CATEGORIES mix, plus the DECOYS, shuffled; the same for a seed."""
    rng = random.Random(seed)
    plan = _counts(managed, {name: share for name, (share, _) in CATEGORIES.items()})
    plan |= _counts(managed, {name: share for name, (share, _) in DECOYS.items()})
    specs: list[SecretSpec] = []
    for category, count in plan.items():
        for _ in range(count):
            n = len(specs)
            team = {"Team": f"team-{rng.randrange(40):02d}", "Env": rng.choice(("prod", "staging"))}
            tags = {"Managed": "true", **team} if category in CATEGORIES else {**DECOYS[category][1], **team}
            specs.append(_spec(f"bench/scan/svc-{n:05d}", category, tags, rng))
    rng.shuffle(specs)
    return specs


def expected(specs: list[SecretSpec]) -> dict[str, Any]:
    """What a correct scan finds: Managed=true secrets checked, and those it must flag."""
    managed = [spec for spec in specs if spec.managed]
    return {
        "secrets": len(specs),
        "managed": len(managed),
        "flagged": sum(CATEGORIES[spec.category][1] for spec in managed),
        "by_category": dict(sorted(Counter(spec.category for spec in specs).items())),
    }


def _version(version_id: str, days: float, stages: list[str], now: float) -> dict[str, Any]:
    # The value is a placeholder, never a real credential: the scan does not read values.
    return {
        "createdate": int(now - days * DAY_S),
        "version_id": version_id,
        "version_stages": stages,
        "secret_string": "bench-placeholder",
    }


def seed_backend(specs: list[SecretSpec], *, region: str = REGION, account: str = ACCOUNT) -> None:
    """Write `specs` into this process's moto Secrets Manager backend, dated as they say."""
    from moto.backends import get_backend
    from moto.secretsmanager.models import FakeSecret

    backend: Any = get_backend("secretsmanager")[account][region]
    now = time.time()
    for spec in specs:
        current = str(uuid.uuid4())
        secret = FakeSecret(
            account_id=account,
            region_name=region,
            secret_id=spec.name,
            secret_version=_version(current, spec.current_version_days, ["AWSCURRENT"], now),
            version_id=current,
            secret_string="bench-placeholder",
            tags=[{"Key": key, "Value": value} for key, value in spec.tags.items()],
            last_changed_date=int(now - spec.changed_days * DAY_S),
            created_date=int(now - spec.created_days * DAY_S),
        )
        if spec.previous_version_days is not None:
            previous = str(uuid.uuid4())
            secret.versions[previous] = _version(previous, spec.previous_version_days, ["AWSPREVIOUS"], now)
        if spec.pending:
            pending = str(uuid.uuid4())
            secret.versions[pending] = _version(pending, 0.1, ["AWSPENDING"], now)
        secret.rotation_requested = spec.rotation_requested
        secret.rotation_enabled = spec.rotation_enabled
        secret.auto_rotate_after_days = 30 if spec.rotation_requested else 0
        if spec.rotation_requested:
            secret.rotation_lambda_arn = f"arn:aws:lambda:{region}:{account}:function:rotate"
        if spec.rotated_days is not None:
            secret.last_rotation_date = int(now - spec.rotated_days * DAY_S)
        if spec.next_rotation_days is not None:
            secret.next_rotation_date = int(now + spec.next_rotation_days * DAY_S)
        dict.__setitem__(backend.secrets, spec.name, secret)  # moto's store looks names up linearly


def report_true_version_dates() -> None:
    """`ListSecretVersionIds` with each version's real `CreatedDate`, as AWS reports it (moto says "now")."""
    from moto.secretsmanager.models import SecretsManagerBackend

    def list_secret_version_ids(self: Any, secret_id: str) -> str:
        secret = self.secrets[secret_id]
        versions = [
            {"VersionId": vid, "VersionStages": version["version_stages"], "CreatedDate": version["createdate"]}
            for vid, version in secret.versions.items()
        ]
        return json.dumps({"ARN": secret.arn, "Name": secret.name, "Versions": versions})

    SecretsManagerBackend.list_secret_version_ids = list_secret_version_ids  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="sleep before serving each AWS call")
    parser.add_argument("--secrets", type=int, default=10_000, help="Managed=true secrets (decoys come on top)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    specs = plan_inventory(args.secrets, args.seed)
    try:
        emulator = start_emulator(args.host, args.port, latency_ms=args.latency_ms)
    except (OSError, PatchError) as exc:
        print(f"scan emulator: cannot start: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    started = time.perf_counter()
    report_true_version_dates()
    seed_backend(specs)
    inventory = expected(specs) | {"seed": args.seed, "seeded_in_s": round(time.perf_counter() - started, 2)}
    print(json.dumps({"endpoint_url": emulator.endpoint_url, "inventory": inventory}), flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
