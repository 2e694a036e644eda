"""Where a run's time goes: the runner hands one `Timing` to the simulators, which add the
seconds they spend in power flows and market clearing; the runner stores it with `--profile`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Timing:
    powerflow_s: float = 0.0
    clearing_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"powerflow_s": self.powerflow_s, "clearing_s": self.clearing_s}
