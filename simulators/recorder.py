"""mosaik simulator that streams each step's record into the HDF5 results file."""

from __future__ import annotations

import mosaik_api_v3
from tsodso.results.writer import ResultsWriter

META = {
    "api_version": "3.0",
    "type": "event-based",
    "models": {"Recorder": {"public": True, "params": [], "attrs": ["record"]}},
}


class RecorderSim(mosaik_api_v3.Simulator):
    def __init__(self) -> None:
        super().__init__(META)
        self.writer: ResultsWriter | None = None
        self.steps = 0

    def init(self, sid, time_resolution=1.0, writer: ResultsWriter | None = None, on_step=None):
        self.writer = writer
        self.on_step = on_step
        return self.meta

    def create(self, num, model):
        return [{"eid": "recorder", "type": model}]

    def step(self, time, inputs, max_advance):
        for rec in inputs.get("recorder", {}).get("record", {}).values():
            self.writer.append(rec)
            self.steps += 1
            if self.on_step is not None:
                self.on_step()
        return None
