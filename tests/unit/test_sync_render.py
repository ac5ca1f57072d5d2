"""Rendering a derived secret, pure: templates, percent-encoding, fallbacks, the target's shape."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from daemon.sync.render import Rendered, RenderError, RenderReason, render
from daemon.templates import DEFAULT_TEMPLATE, pair_problems, template_problems

SOURCE = json.dumps({"username": "app", "password": "s3cret"})
FULL = {"username": "u", "password": "s3cret", "host": "h", "port": 5432, "dbname": "d"}
SETTINGS = {"host": "db.internal", "port": 5432, "dbname": "app", "username": "", "sslmode": "require"}


def _ok(result: Rendered | RenderError) -> Rendered:
    assert isinstance(result, Rendered), result
    return result


def _error(result: Rendered | RenderError) -> RenderError:
    assert isinstance(result, RenderError), result
    return result


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", None),
        (DEFAULT_TEMPLATE, None),
        ("mysql://{username}:{password}@{host}/{dbname}", None),
        ("{password}", None),
        ("postgres://{username}:{pasword}@{host}", "unknown template field {pasword}"),
        ("postgres://{username}@{host}", "template must contain {password}"),
        ("{password.__class__}", "unknown template field {(not a plain name)}"),
        ("{password[0]}", "unknown template field {(not a plain name)}"),
        ("{}{password}", "positional placeholder {} is not allowed"),
        ("{password!r}", "must not have a format spec or conversion"),
        ("{password:>20}", "must not have a format spec or conversion"),
        ("postgres://{password", "not a valid format string"),
    ],
)
def test_template_problems(template: str, problem: str | None) -> None:
    """Templates use only the allowed fields, plainly, and must contain the password."""
    problems = template_problems(template)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"template": "", "sslmode": "require", "host": "", "port": 0}, None),
        ({"template": "", "sslmode": "verify-full", "host": "db-1.eu.rds.amazonaws.com", "port": 5432}, None),
        ({"template": "", "sslmode": "require", "host": "[::1]", "port": 1}, None),
        ({"template": "", "sslmode": "required", "host": "", "port": 0}, "sslmode must be one of"),
        ({"template": "", "sslmode": "require", "host": "evil@host", "port": 0}, "host must be"),
        ({"template": "", "sslmode": "require", "host": "h", "port": 70000}, "port must be"),
        ({"template": "{nope}", "sslmode": "require", "host": "", "port": 0}, "unknown template field {nope}"),
    ],
)
def test_pair_problems(settings: dict[str, Any], problem: str | None) -> None:
    """A pair's rendering settings are checked at start-up, every problem at once."""
    problems = pair_problems(**settings)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "password",
    ["plain", "p@ss", "a/b", "c:d", "100%", "x#y", "why?", "with space", "@/:%#? +&=", "ünï©ødé", "'\"\\"],
)
def test_credentials_round_trip_through_the_url(password: str) -> None:
    """Username and password come back unchanged from the parsed URL, whatever their characters."""
    source = json.dumps({"username": "us@er:/", "password": password})
    url = _ok(render(source, None, settings=SETTINGS)).url
    parts = urlsplit(url)
    assert unquote(parts.password or "") == password
    assert unquote(parts.username or "") == "us@er:/"
    assert (parts.hostname, parts.port, parts.path, parts.query) == ("db.internal", 5432, "/app", "sslmode=require")


def test_source_fields_win_over_pair_settings_and_the_target() -> None:
    """A field the source holds is used even when the pair and the target have one too."""
    source = json.dumps({"username": "u", "password": "p", "host": "src.host", "port": 6000, "dbname": "srcdb"})
    url = _ok(render(source, "postgres://t:t@target.host:7000/tdb", settings=SETTINGS)).url
    assert url == "postgres://u:p@src.host:6000/srcdb?sslmode=require"


def test_pair_settings_win_over_the_target() -> None:
    """A field the source lacks comes from the pair before the target."""
    url = _ok(render(SOURCE, "postgres://t:t@target.host:7000/tdb", settings=SETTINGS)).url
    assert url == "postgres://app:s3cret@db.internal:5432/app?sslmode=require"


def test_the_target_fills_what_the_source_and_pair_lack() -> None:
    """An RDS-managed source (username, password only) takes host, port and dbname from the target's URL."""
    result = _ok(render(SOURCE, "postgres://old:old@target.host:7000/tdb?sslmode=require", settings={}))
    assert result.url == "postgres://app:s3cret@target.host:7000/tdb?sslmode=require"
    assert result.changed


def test_the_password_never_falls_back_to_the_target() -> None:
    """A source without a password is an error even when the target's URL holds one."""
    source = json.dumps({"username": "app"})
    error = _error(render(source, "postgres://app:old@h:1/d", settings=SETTINGS))
    assert error.reason is RenderReason.MISSING_FIELD
    assert "password" in error.detail


@pytest.mark.parametrize(
    ("source", "target", "reason"),
    [
        (None, None, RenderReason.SOURCE_UNPARSEABLE),
        ("not json", None, RenderReason.SOURCE_UNPARSEABLE),
        ("[1, 2]", None, RenderReason.SOURCE_UNPARSEABLE),
        (json.dumps({"username": "u", "password": 5}), None, RenderReason.BAD_FIELD),
        (json.dumps({**FULL, "host": "bad host"}), None, RenderReason.BAD_FIELD),
        (json.dumps({**FULL, "host": "u:p@evil"}), None, RenderReason.BAD_FIELD),
        (json.dumps({**FULL, "port": "99999"}), None, RenderReason.BAD_FIELD),
        (json.dumps({**FULL, "port": True}), None, RenderReason.BAD_FIELD),
        (SOURCE, "{not json", RenderReason.TARGET_UNPARSEABLE),
        (SOURCE, json.dumps({"url": "postgres://a:b@h:1/d"}), RenderReason.TARGET_UNPARSEABLE),
        (SOURCE, json.dumps(["postgres://a:b@h:1/d"]), RenderReason.TARGET_UNPARSEABLE),
        (SOURCE, "just some text", RenderReason.TARGET_UNPARSEABLE),
        (SOURCE, None, RenderReason.MISSING_FIELD),
    ],
)
def test_bad_input_is_a_reasoned_error(source: str | None, target: str | None, reason: RenderReason) -> None:
    """Without pair settings, each bad source or target is an error with its reason, naming no value."""
    error = _error(render(source, target, settings={}))
    assert error.reason is reason
    assert "s3cret" not in error.detail


def test_a_target_that_is_not_a_url_is_replaced_when_nothing_is_needed_from_it() -> None:
    """With every field known, the target's current text does not matter."""
    assert _ok(render(SOURCE, "just some text", settings=SETTINGS)).changed


def test_a_bad_template_is_an_error() -> None:
    """An unknown template field fails the render with bad_template."""
    error = _error(render(SOURCE, None, template="{password}@{hots}", settings=SETTINGS))
    assert error.reason is RenderReason.BAD_TEMPLATE
    assert "{hots}" in error.detail


def test_a_json_target_keeps_its_shape_and_other_keys() -> None:
    """A target holding {"DATABASE_URL": ...} gets that key replaced and keeps the others."""
    target = json.dumps({"DATABASE_URL": "postgres://a:b@h:1/d", "REDIS_URL": "redis://r"})
    result = _ok(render(SOURCE, target, settings=SETTINGS))
    assert result.shape == "json"
    assert json.loads(result.value) == {"DATABASE_URL": result.url, "REDIS_URL": "redis://r"}


def test_an_equal_target_is_unchanged() -> None:
    """Rendering onto a target that already holds the value reports no change and keeps its text."""
    url = _ok(render(SOURCE, None, settings=SETTINGS)).url
    assert not _ok(render(SOURCE, url, settings=SETTINGS)).changed
    document = json.dumps({"DATABASE_URL": url, "X": "y"}, indent=2)
    unchanged = _ok(render(SOURCE, document, settings=SETTINGS))
    assert not unchanged.changed
    assert unchanged.value == document


def test_a_custom_template_and_sslmode() -> None:
    """A custom template renders its own fields only, with the pair's sslmode."""
    settings = {**SETTINGS, "sslmode": "verify-full"}
    url = _ok(render(SOURCE, None, template="{host}|{password}|{sslmode}", settings=settings)).url
    assert url == "db.internal|s3cret|verify-full"


def test_the_fingerprint_ignores_the_password_only() -> None:
    """The write token's fingerprint follows every field but the password."""
    other_password = json.dumps({"username": "app", "password": "different"})
    base = _ok(render(SOURCE, None, settings=SETTINGS)).fingerprint
    assert _ok(render(other_password, None, settings=SETTINGS)).fingerprint == base
    assert _ok(render(SOURCE, None, settings={**SETTINGS, "host": "elsewhere"})).fingerprint != base


def test_repr_hides_the_value() -> None:
    """A Rendered printed by accident shows no credential."""
    assert "s3cret" not in repr(_ok(render(SOURCE, None, settings=SETTINGS)))
