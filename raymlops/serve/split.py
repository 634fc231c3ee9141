"""Traffic split between a stable and a canary version, sticky keys and shadow traffic. Pure.

Each request gets a point ``u`` in [0, 1): the hash of its sticky key when it has one,
a random draw otherwise. The canary takes ``u < canary_weight``. Because the canary's
interval only grows from 0, raising its weight from w1 to w2 moves exactly the keys with
``w1 <= u < w2`` and no others, and a key stays on its version while weights stay put.
Shadowing uses an independent point, so the shadowed share is the same on both arms.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

Arm = Literal["stable", "canary", "pinned"]


@dataclass(frozen=True)
class TrafficPolicy:
    """Which versions are live and how requests are shared between them."""

    stable_version: int
    canary_version: int | None = None
    canary_weight: float = 0.0
    shadow_version: int | None = None
    shadow_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.canary_weight <= 1.0:
            raise ValueError(f"canary_weight must be within [0, 1], got {self.canary_weight}")
        if not 0.0 <= self.shadow_share <= 1.0:
            raise ValueError(f"shadow_share must be within [0, 1], got {self.shadow_share}")
        if self.canary_weight > 0 and self.canary_version is None:
            raise ValueError("canary_weight > 0 needs a canary_version")
        if self.shadow_share > 0 and self.shadow_version is None:
            raise ValueError("shadow_share > 0 needs a shadow_version")

    @classmethod
    def from_user_config(cls, config: dict) -> "TrafficPolicy":
        """The policy a Serve ``user_config`` describes (the keys ``raymlops deploy`` writes).

        Raises:
            ValueError / KeyError / TypeError: an impossible or incomplete split.
        """
        return cls(
            stable_version=int(config["stable_version"]),
            canary_version=config.get("canary_version"),
            canary_weight=float(config.get("canary_weight", 0.0)),
            shadow_version=config.get("shadow_version"),
            shadow_share=float(config.get("shadow_share", 0.0)),
        )

    @property
    def live_versions(self) -> set[int]:
        """Every version that may receive a request (answering or shadowing)."""
        versions = {self.stable_version}
        if self.canary_version is not None:
            versions.add(self.canary_version)
        if self.shadow_version is not None:
            versions.add(self.shadow_version)
        return versions


@dataclass(frozen=True)
class Route:
    """Where one request goes: the answering arm and version, and an optional shadow."""

    arm: Arm
    version: int
    shadow_version: int | None = None


def key_point(key: str, salt: str = "") -> float:
    """A stable point in [0, 1) for a sticky key (the same in every process and restart)."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def route(policy: TrafficPolicy, key: str | None = None, rng: random.Random | None = None) -> Route:
    """Choose the version that answers a request, and whether it is also shadowed."""
    draw = rng.random if rng is not None else random.random
    point = key_point(key, "split") if key is not None else draw()
    arm: Literal["stable", "canary"]
    if policy.canary_version is not None and point < policy.canary_weight:
        arm, version = "canary", policy.canary_version
    else:
        arm, version = "stable", policy.stable_version
    shadow = None
    if policy.shadow_version is not None and policy.shadow_version != version:
        shadow_point = key_point(key, "shadow") if key is not None else draw()
        if shadow_point < policy.shadow_share:
            shadow = policy.shadow_version
    return Route(arm, version, shadow)
