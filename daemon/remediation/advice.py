"""What a human should do when remediation escalates: the exact label moves, in version ids; never a value."""

from __future__ import annotations

from daemon.remediation.state import held_label

TAG_MOVE_CURRENT = "rotaudit:move-current"


def advice_for(reason: str, arn: str, current: str | None, pending: str | None) -> str:
    """The advice for an escalation `reason` (a `plan.Reason` value); empty where the reason says it all."""
    current, pending = current or "?", pending or "?"
    promote = (
        f"aws secretsmanager update-secret-version-stage --secret-id {arn} --version-stage AWSCURRENT "
        f"--move-to-version-id {pending} --remove-from-version-id {current}"
    )
    set_aside = (
        f"aws secretsmanager update-secret-version-stage --secret-id {arn} --version-stage {held_label(pending)} "
        f"--move-to-version-id {pending}; then remove AWSPENDING from {pending} and rotate again"
    )
    texts = {
        "move_not_allowed": (
            f"The database holds the pending version {pending}; AWSCURRENT {current} may no longer work. Finish the "
            f"rotation: {promote} (or tag the secret {TAG_MOVE_CURRENT}=allowed to let rotaudit do it)."
        ),
        "strategy_unknown": (
            f"testSecret failed after setSecret changed the database to the pending version {pending}. Single-user "
            f"rotation: AWSCURRENT {current} no longer works; finish with: {promote}. Alternating users: AWSCURRENT "
            f"still works; set {pending} aside: {set_aside}. Tag the secret rotaudit:strategy=single-user or "
            "alternating-users to let rotaudit decide."
        ),
        "unknown_step": (
            f"The failing step is unknown: the database may hold {current} or {pending}. Check the rotation "
            "function's logs before moving any label."
        ),
        "rotation_disabled": "Rotation is disabled on this secret: re-enable it (rotate-secret with rules) to retry.",
        "budget_exhausted": (
            "rotaudit's RotateSecret budget for this secret is spent: fix the cause the rotation function logs, then "
            "rotate by hand."
        ),
        "attempts_exhausted": "rotaudit tried as often as it may for this failure: fix the cause, then rotate by hand.",
    }
    return texts.get(reason, "")
