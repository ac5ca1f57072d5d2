"""What every moto patch shares: the pinned moto version, PatchError, the target checks and the installed-mark.

Each service's patch module imports only this one; `daemon.devtools.patches` imports them all and applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PINNED_MOTO = "5.2"

MARK = "_rotaudit_patch"  # set on every function we install, so a second apply_patches() is a no-op


class PatchError(RuntimeError):
    """A moto patch no longer applies: moto's internals changed. The message names the patch and the fix."""


def broken(patch: str, what: str) -> PatchError:
    return PatchError(
        f"moto patch {patch!r} no longer applies: {what}. moto's internals changed since {PINNED_MOTO}.x: "
        f"re-read the moto source, then rewrite the patch in daemon/devtools/patches/, drop it if moto now gets "
        f"this right, or pin moto back to {PINNED_MOTO}.x."
    )


def require(owner: Any, patch: str, *attrs: str) -> Any:
    """The first of `attrs` on `owner`, after checking that every one of them exists."""
    for attr in attrs:
        if getattr(owner, attr, None) is None:
            raise broken(patch, f"{getattr(owner, '__name__', owner)}.{attr} is missing")
    return getattr(owner, attrs[0])


def install(owner: Any, function: Callable[..., Any], patch: str) -> None:
    """Put `function` on `owner` under its own name, marked as installed by `patch`."""
    setattr(function, MARK, patch)
    setattr(owner, function.__name__, function)
