"""Letting NeMo build and restore dragoman classes.

NeMo 3.0 instantiates (`safe_instantiate`, `ModelPT.from_config_dict`) and restores
(`restore_from`) only classes whose path starts with a prefix in
`nemo.core.classes.common.ALLOWED_TARGET_PREFIXES`; anything else raises `UnsafeTargetError`.
dragoman never edits that list on import: a user (or dragoman's own restore path) calls
`register_with_nemo()` once, explicitly, which adds exactly the prefix `dragoman.` — nothing
broader — so a NeMo config may name `dragoman.nodes.modules...` or a dragoman node class.
"""
from __future__ import annotations

PREFIX = "dragoman."


def register_with_nemo() -> None:
    """Add `dragoman.` to NeMo's allowed `_target_` prefixes (idempotent)."""
    from nemo.core.classes import common

    if PREFIX not in common.ALLOWED_TARGET_PREFIXES:
        common.ALLOWED_TARGET_PREFIXES.append(PREFIX)


def is_registered() -> bool:
    from nemo.core.classes import common

    return PREFIX in common.ALLOWED_TARGET_PREFIXES
