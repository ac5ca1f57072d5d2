"""Secret canaries: recognisable secret values, every encoded form of them, and a search over what rotaudit emits.

Every secret value in the canary test holds `CANARY-<32 hex>`. `Canary.needles()` is every form in which such a
value could leak: as it is (also inside JSON or a URL, where the marker needs no escaping), in either case, cut to a
prefix, percent-encoded, hex-encoded, base64-encoded at each of the three byte alignments (standard and URL-safe
alphabets), and as MD5/SHA-1/SHA-256 digests of each whole value. `search` looks for all of them in named sinks
(log lines, audit items, messages) and counts what it searched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import structlog

from tests.support import FAKE_CREDENTIALS, REGION, ROOT, boto, rotation, rotaudit_cmd


@dataclass(frozen=True)
class Canary:
    """A family of secret values sharing one unguessable marker."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def marker(self) -> str:
        return f"CANARY-{self.token}"

    def value(self, label: str) -> str:
        """A secret value holding the marker and characters a URL must percent-encode."""
        return f"{self.marker}-{label}/p@ss w:rd%#?&=+"

    def needles(self, values: Iterable[str] = ()) -> dict[str, str]:
        """Form name -> text to look for. `values`: whole secret values, whose digests are looked for too."""
        marker = self.marker.encode()
        found = {
            "marker": self.marker,
            "token": self.token,
            "token-prefix-12": self.token[:12],
            "hex": marker.hex(),
        }
        for offset in range(3):
            # The characters of base64(prefix + marker + suffix) that depend on the marker's bytes alone: character i
            # covers bits 6i..6i+5, so from i = ceil(8 * offset / 6); the last two may mix in what follows it.
            encoded = base64.b64encode(b"\0" * offset + marker).decode().rstrip("=")
            core = encoded[-(-8 * offset // 6) : -2]
            found[f"base64+{offset}"] = core
            found[f"base64url+{offset}"] = core.replace("+", "-").replace("/", "_")
        for number, value in enumerate(values):
            data = value.encode()
            found[f"value{number}-percent"] = quote(value, safe="")
            found[f"value{number}-plus"] = quote_plus(value)
            for algorithm in ("md5", "sha1", "sha256"):
                found[f"value{number}-{algorithm}"] = hashlib.new(algorithm, data).hexdigest()
        return found


@dataclass
class Findings:
    """What `search` looked through and what it found."""

    searched: dict[str, int]  # sink -> documents (log lines, items, messages) searched
    hits: list[str]  # "<sink>[<index>]: <form>: <excerpt>"

    def __str__(self) -> str:
        counts = ", ".join(f"{count} {sink}" for sink, count in self.searched.items())
        return f"searched {counts}; {len(self.hits)} hits" + "".join(f"\n  {hit}" for hit in self.hits[:20])


def search(sinks: Mapping[str, Sequence[str]], needles: dict[str, str]) -> Findings:
    """Every needle in every document of every sink; needles of hex digits match in either case."""
    hits: list[str] = []
    for sink, documents in sinks.items():
        for index, document in enumerate(documents):
            lowered = document.lower()
            for form, needle in needles.items():
                hexish = all(ch in "0123456789abcdef" for ch in needle.lower())
                position = lowered.find(needle.lower()) if hexish else document.find(needle)
                if position >= 0:
                    hits.append(f"{sink}[{index}]: {form}: {document[max(0, position - 60) : position + 80]!r}")
    return Findings({sink: len(documents) for sink, documents in sinks.items()}, hits)


# -- capture --------------------------------------------------------------------------------------------------------


def cli_env(endpoint: str, stack: dict[str, str], **extra: str) -> dict[str, str]:
    """Environment for the rotaudit CLI against the emulator and the stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ROTAUDIT_"))}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "ROTAUDIT_QUEUE_URL": stack["queue_url"],
            "ROTAUDIT_AUDIT_TABLE": stack["table_name"],
            **extra,
        }
    )
    return env


@dataclass(frozen=True)
class CliRun:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str


def run_cli(*commands: tuple[dict[str, str], Sequence[str]], timeout_s: float = 50) -> list[CliRun]:
    """Run (environment, arguments) rotaudit commands side by side, each a fresh interpreter; wait for all."""
    started = [
        (tuple(args), subprocess.Popen(rotaudit_cmd(*args), env=env, cwd=ROOT, stdout=-1, stderr=-1, text=True))
        for env, args in commands
    ]
    runs = []
    for args, process in started:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr += f"\n(test harness: killed after {timeout_s:.0f}s)"
        runs.append(CliRun(args, process.returncode, stdout, stderr))
    return runs


def run_cli_here(env: dict[str, str], *args: str) -> CliRun:
    """One rotaudit command in this process (no interpreter start-up), in `env`, capturing stdout and stderr."""
    from daemon import cli

    saved, logging = dict(os.environ), structlog.get_config()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse
                code = int(exc.code or 0)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        structlog.configure(**logging)  # the CLI pointed structlog at the captured stderr
    return CliRun(args, code, out.getvalue(), err.getvalue())


def sns_tap(endpoint: str, topic_arn: str) -> str:
    """A queue subscribed to the topic without raw delivery, so the whole SNS envelope (subject too) is captured."""
    sqs = boto("sqs", endpoint)
    url = str(sqs.create_queue(QueueName=f"canary-sns-{uuid.uuid4().hex[:10]}")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto("sns", endpoint).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def documents(items: Iterable[Any]) -> list[str]:
    """Each item as one JSON document (str() for what JSON cannot hold: bytes, Decimal)."""
    return [json.dumps(item, default=str, sort_keys=True) for item in items]


def put_secret(
    endpoint: str, name: str, value: str, tags: dict[str, str], *, rotating: bool = False, failing: str = "setSecret"
) -> str:
    """A secret; with `rotating`, a rotation of it has really failed on the emulator's rotation stand-in: the
    stand-in's function attached, rotation on, step `failing` failing before its change with no retry by Secrets
    Manager, so AWSPENDING dangles on a version of its own. Returns its ARN.

    The rotation's RotationStarted and RotationFailed go wherever the emulator's rules send them. Its new value
    is the stand-in's (a random password): the canary values stay where they were put.
    """
    sm = boto("secretsmanager", endpoint)
    tag_list = [{"Key": key, "Value": tag} for key, tag in tags.items()]
    arn = str(sm.create_secret(Name=name, SecretString=value, Tags=tag_list)["ARN"])
    if rotating:
        rotation.configure(endpoint, arn, failures=[rotation.Failure(failing, times=None)], retries=0)
        token = sm.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
        failed = rotation.wait_for_outcome(endpoint, arn, token)
        assert (failed.status, failed.attempts[-1].failed_step) == ("failed", failing), failed
    return arn
