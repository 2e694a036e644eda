"""mosaik simulator of the flexibility providers.

Every step it publishes the offers (MW and price per bid slot, from forecasts and state) and
a neutral set-point message that starts the grids' step. When the coordinator's activations
arrive (same step, weak connection) it turns them into set-point changes per grid and updates
the resources' state (state of charge). The coordinator sends activations only when it
activated something; a step without them is settled as "nothing activated" before the next
step's offers (and at the end of the run), which spares a simulator step per such step.
"""

from __future__ import annotations

from dataclasses import replace

import mosaik_api_v3
import numpy as np
from tsodso.simulators.flexibility import Dispatch, Offers, Portfolio

META = {
    "api_version": "3.0",
    "type": "hybrid",
    "models": {"Providers": {"public": True, "params": [],
                             "attrs": ["bids", "setpoints", "activations"],
                             "trigger": ["activations"]}},
}


class ProvidersSim(mosaik_api_v3.Simulator):
    """All flexible resources of the run, as one mosaik entity."""

    def __init__(self) -> None:
        super().__init__(META)
        self.out: dict = {}

    def init(self, sid, time_resolution=1.0, portfolio: Portfolio | None = None,
             step_s: int = 900, until: int = 0):
        self.portfolio = portfolio
        self.step_s = step_s
        self.until = until
        self.unsettled: int | None = None  # a step that got no activations, not yet settled
        return self.meta

    def create(self, num, model):
        return [{"eid": "providers", "type": model}]

    def step(self, time, inputs, max_advance):
        k = time // self.step_s
        acts = [a for a in inputs.get("providers", {}).get("activations", {}).values()
                if a is not None]
        if acts:
            dispatch: Dispatch = acts[0]
            activated = np.asarray(dispatch.activated)
            self.unsettled = None
            setpoints = self.portfolio.activate(k, activated)
            if dispatch.without_tso_d is not None:
                cf = self.portfolio.setpoints(np.asarray(dispatch.without_tso_d))
                setpoints = {g: replace(sp, without_tso=cf[g]) for g, sp in setpoints.items()}
            # nothing activated: the grids need not run again
            self.out = {"setpoints": setpoints} if np.any(activated > 1e-6) else {}
            return None
        self._settle()
        book = self.portfolio.offer(k)
        self.out = {"bids": Offers(book.mw.copy(), book.price.copy()),
                    "setpoints": self.portfolio.neutral()}
        self.unsettled = k
        nxt = time + self.step_s
        return nxt if nxt < self.until else None

    def _settle(self) -> None:
        """Settle the last step as "nothing activated" (activating zeros) if no activations
        came for it."""
        if self.unsettled is not None:
            self.portfolio.activate(self.unsettled, np.zeros(len(self.portfolio.book)))
            self.unsettled = None

    def finalize(self) -> None:
        self._settle()

    def get_data(self, outputs):
        wanted = outputs.get("providers", [])
        return {"providers": {a: self.out[a] for a in wanted if a in self.out}}
