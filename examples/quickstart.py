"""tsodso from Python: load a scenario with overrides, run schemes, plot voltages and costs,
read the KPI table. A script with cells (`# %%`): run it whole (`python
examples/quickstart.py [OUT_DIR]`) or cell by cell in an editor that knows the cells.

Figures are saved as PNGs into OUT_DIR (default: ./quickstart-out).
"""

# %% set-up: the Agg backend writes files without a display
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import tsodso  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-out")
out.mkdir(parents=True, exist_ok=True)
logging.basicConfig(level=logging.INFO, format="%(message)s")  # set-up phases, progress

# %% a scenario: the built-in `tiny` with a few changes, validated like a file
scenario = tsodso.load_scenario(
    "tiny",
    **{"run.steps": 24, "flexibility.pv.share": 0.3, "forecast.wind.sigma": 0.08})
print(scenario.run, scenario.forecast.wind)

# %% one scheme: the result is a tsodso.results.Run (pandas / xarray views of the file)
run = tsodso.run(scenario, "common", out / "tiny-common.h5")
print(run.kpis[["social_cost_eur", "imbalance_value_eur", "activated_mwh"]])

# %% voltages of the D grids over the day (xarray)
fig, ax = plt.subplots(figsize=(7, 3.5))
for name in run.grids:
    grid = run.grid(name)
    if grid.attrs["level"] != "D":
        continue
    grid.vm_pu.max("bus").plot(ax=ax, label=f"{name} max")
    grid.vm_pu.min("bus").plot(ax=ax, label=f"{name} min", linestyle="--")
ax.axhline(grid.attrs["vm_max_pu"], color="grey", linewidth=0.8)
ax.set_ylabel("voltage (pu)")
ax.set_title("D grid voltages, common market")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "voltages.png", dpi=100)

# %% social cost per step (pandas): flexibility at bid prices and the value of what stays
# unserved; what buyers paid is a transfer, shown apart
costs = run.costs
fig, ax = plt.subplots(figsize=(7, 3.5))
costs[["resource", "imbalance", "overload_t", "overload_d", "voltage_d"]].plot.area(
    ax=ax, linewidth=0)
costs["tso"].plot(ax=ax, color="black", linestyle=":", label="TSO paid")
ax.set_ylabel("EUR per step")
ax.set_title("social cost per step, common market")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "costs.png", dpi=100)

# %% several schemes side by side: the KPI table (one row per scheme)
table = tsodso.compare(scenario, ["none", "centralized", "common"], out / "compare")
print(table[["social_cost_eur", "imbalance_value_eur", "unserved_value_eur", "activated_mwh"]])
ax = table["social_cost_eur"].plot.bar(figsize=(5, 3), title="social cost (EUR)")
ax.figure.tight_layout()
ax.figure.savefig(out / "total_cost.png", dpi=100)
print(f"figures in {out}")
