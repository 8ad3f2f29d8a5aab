"""Proportions with Wilson score intervals (95%, z = 1.96).

The Wilson interval is used because audited samples are small and proportions sit near 1: the
normal ("Wald") interval would claim certainty it does not have (with 50 of 50 correct it gives
[1, 1]; Wilson gives [0.929, 1]). For ``n = 0`` the estimate is undefined and the interval is the
whole [0, 1], so an empty sample never meets a target.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Z95", "Proportion", "wilson_interval"]

Z95 = 1.96


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for ``successes`` out of ``n``.

    Raises ``ValueError`` for negative counts, ``successes > n`` or ``z <= 0``.
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if z <= 0:
        raise ValueError(f"z must be positive, got {z}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    low = (centre - spread) / denominator
    high = (centre + spread) / denominator
    return max(0.0, low), min(1.0, high)


class Proportion(BaseModel):
    """``successes`` out of ``n`` with its Wilson 95% interval; ``estimate`` is None when ``n`` is 0."""

    model_config = ConfigDict(frozen=True)

    successes: int = Field(ge=0)
    n: int = Field(ge=0)
    estimate: float | None = None
    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _check(self) -> Proportion:
        if self.successes > self.n:
            raise ValueError(f"successes ({self.successes}) exceed n ({self.n})")
        return self

    @classmethod
    def of(cls, successes: int, n: int) -> Proportion:
        low, high = wilson_interval(successes, n)
        return cls(
            successes=successes,
            n=n,
            estimate=round(successes / n, 6) if n else None,
            low=round(low, 6),
            high=round(high, 6),
        )

    def describe(self) -> str:
        """``0.962 [0.912, 0.984] (76/79)`` or ``- (0/0)``."""
        if not self.n:
            return "- (0/0)"
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}] ({self.successes}/{self.n})"
