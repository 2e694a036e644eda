"""The key reference of docs/scenarios.md, generated from the schema so that every default
and range in the docs is the code's.

    python -m tsodso.scenarios.doc            # rewrite the generated blocks of docs/scenarios.md
    python -m tsodso.scenarios.doc --check    # exit 1 if the doc differs from the schema

Defaults and ranges come from `tsodso.scenarios.schema` (the default scenario) and the asset
kinds from `tsodso.core.assets`; only the one-line meaning of each key is written here, and
`tests/test_scenario_doc.py` fails if a key has none.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tsodso.core.assets import KINDS
from tsodso.scenarios.schema import Scenario

#: What each key means, by dotted path with the asset kind written as `<kind>`.
MEANING: dict[str, str] = {
    "name": "required; shown in results",
    "description": "free text",
    "grid.source": '"simbench", "tiny" or "pandapower" (an own net, see below)',
    "grid.code": "SimBench code (an HV/MV grid; the data ships with the simbench package)",
    "grid.mv_busbar_pu": "the DSOs' MV busbar voltage target: taps set to it at the first "
                         "step, then held within the deadband by the tap changers (see "
                         "control.dso_taps)",
    "grid.file": "own grid: a pandapower JSON net (pandapower.to_json); relative to this file",
    "grid.interfaces": "own grid: the TSO-DSO interface transformers (trafo indices)",
    "grid.interface_kv": "own grid, instead of interfaces: every transformer with its HV side "
                         "at or above this voltage and its LV side below",
    "grid.profiles": "own grid: time series, CSV or Parquet; relative to this file",
    "grid.profiles_start": "own grid: time of the first profile row (unset: 2016-01-01)",
    "grid.profiles_step_s": "own grid: seconds between profile rows (unset: 900)",
    "run.start": "SimBench/tiny: a quarter hour within the profile year 2016",
    "run.steps": "start + steps * step_s must stay within the profiles",
    "run.step_s": "a multiple of 900 s (and of an own grid's profiles_step_s)",
    "run.seed": "forecast errors; same seed -> identical results",
    "forecast.<kind>.sigma": "error std as a fraction of the asset's rating (0 = exact)",
    "forecast.<kind>.rho": "AR(1) autocorrelation per 15 minutes",
    "forecast.<kind>.common": "share of the variance common to all assets of the kind",
    "flexibility.<kind>.share": "share of the capability offered to the markets",
    "flexibility.<kind>.price_up": "EUR/MWh the buyer pays for upward activation",
    "flexibility.<kind>.price_down": "EUR/MWh for downward activation (storage: both prices "
                                     "at half full, scaled by the state of charge)",
    "flexibility.<kind>.payback_steps": "loads only: an activation's energy is paid back "
                                        "evenly over this many following steps (0: none)",
    "flexibility.balancing.blocks": "the TSO's offer ladder at the EHV link: blocks per "
                                    "direction",
    "flexibility.balancing.block_mw": "MW per block",
    "flexibility.balancing.price_up": "EUR/MWh of the first upward block",
    "flexibility.balancing.price_down": "EUR/MWh of the first downward block",
    "flexibility.balancing.price_step": "added per further block",
    "limits.T.vm_min_pu": "T grid voltage band (110 kV grids run up to 123 kV = 1.118 pu)",
    "limits.T.vm_max_pu": "",
    "limits.T.loading_max_percent": "branch loading limit",
    "limits.D.vm_min_pu": "D grid voltage band (EN 50160 +-10 %)",
    "limits.D.vm_max_pu": "",
    "limits.D.loading_max_percent": "branch loading limit",
    "penalties.imbalance_eur_per_mwh": "value of unserved balancing energy (both directions); "
                                       "must exceed the overload value (docs/schemes.md)",
    "penalties.overload_eur_per_mwh": "value per MWh (MVA x h) above a branch rating",
    "penalties.voltage_eur_per_pu_h": "value per pu x h outside the voltage band, per bus",
    "coupling.tolerance_mw": "T-D loop inside a step: converged when no interface exchange "
                             "moves by more",
    "coupling.max_iterations": "",
    "market.pricing": '"pay_as_bid" or "pay_as_clear" (locational values, docs/schemes.md)',
    "market.prequalification": "centralized: DSOs cap D bids to what their grids carry",
    "market.schedule_tolerance_mw": "shared balancing: interface deviations below are fine",
    "market.brp_trading": "integrated: BRPs trade against their own imbalance",
    "market.brp_expected_imbalance_price": "integrated: the imbalance price BRPs expect; they "
                                           "buy offers cheaper than that",
    "market.common_decomposed": "common: DSO constraints cleared first, then jointly",
    "market.voltage_margin_pu": "D-aware markets aim this far inside the D voltage band, to "
                                "absorb the linear model's error",
    "market.loading_margin_percent": "and this far below the D loading limit",
    "control.tso_setpoint": "the TSO moves the EHV set-point each step, before any market, to "
                            "keep T voltages in band",
    "control.setpoint_margin_pu": "it aims this far inside the T band",
    "control.max_setpoint_change_pu": "largest change of the set-point from the scenario's",
    "control.dso_taps": "the DSOs' on-load tap changers at the HV/MV transformers act each "
                        "step, before the market and again after it, to hold the MV busbar at "
                        "grid.mv_busbar_pu",
    "control.tap_deadband_pu": "they act when the busbar is farther than this from the target",
    "control.max_tap_moves": "most tap positions a substation moves in one step",
    "growth.d_stress": "scales the D-level growth: factor = max(0, 1 + d_stress x (D - 1)); "
                       "0 = the grid as given, 1 = the D factors as written",
    "growth.<kind>.D": "factor on the kind's ratings and profiles in the D (MV) grids",
    "growth.<kind>.T": "factor on the kind's ratings and profiles in the T (HV) grid",
}

KIND_NAMES = [k.name for k in KINDS]
BEGIN = "<!-- generated by `python -m tsodso.scenarios.doc`: {} -->"
END = "<!-- end of generated block: {} -->"
DOC = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, datetime):
        return v.isoformat()
    if v is None:
        return "(unset)"
    return repr(v)


def _range(model: type[BaseModel], key: str) -> str:
    """The allowed values of a field from its constraints, e.g. '0 .. 1'."""
    info = model.model_fields[key]
    lo = hi = step = None
    lo_open = hi_open = False
    for m in info.metadata:
        for attr, setter in (("ge", "lo"), ("gt", "lo"), ("le", "hi"), ("lt", "hi"),
                             ("multiple_of", "step")):
            val = getattr(m, attr, None)
            if val is None:
                continue
            if setter == "lo":
                lo, lo_open = val, attr == "gt"
            elif setter == "hi":
                hi, hi_open = val, attr == "lt"
            else:
                step = val
    parts = []
    if lo is not None or hi is not None:
        left = "" if lo is None else f"{lo:g} {'<' if lo_open else '<='} "
        right = "" if hi is None else f" {'<' if hi_open else '<='} {hi:g}"
        parts.append(f"{left}x{right}")
    if step is not None:
        parts.append(f"multiple of {step:g}")
    return ", ".join(parts)


def _line(key: str, value: Any, model: type[BaseModel], path: str) -> str:
    meaning = MEANING[path]
    rng = _range(model, key)
    note = "; ".join(t for t in (meaning, rng and f"range {rng}") if t)
    left = f"{key} = {_value(value)}" if value is not None else f"# {key} = (unset)"
    return f"{left:36s}# {note}" if note else left


def keys_block() -> str:
    """The TOML reference of every key with its default, range and meaning."""
    default = Scenario(name="my-scenario")
    out = ["```toml"]
    out.append(_line("name", "my-scenario", Scenario, "name"))
    out.append(_line("description", default.description, Scenario, "description"))
    for section, field in Scenario.model_fields.items():
        value = getattr(default, section)
        if not isinstance(value, BaseModel):
            continue
        subs = {k: getattr(value, k) for k in type(value).model_fields}
        plain = {k: v for k, v in subs.items() if not isinstance(v, BaseModel)}
        if plain:
            out += ["", f"[{section}]"]
            for k, v in plain.items():
                out.append(_line(k, v, type(value), f"{section}.{k}"))
        nested = {k: v for k, v in subs.items() if isinstance(v, BaseModel)}
        shown_kind = False
        for k, v in nested.items():
            if k in KIND_NAMES:
                if shown_kind:
                    continue
                shown_kind = True
                others = ", ".join(n for n in KIND_NAMES if n != k)
                head = f"[{section}.{k}]"
                out += ["", f"{head:36s}# also {others}: defaults per kind below"]
                path = f"{section}.<kind>"
            else:
                out += ["", f"[{section}.{k}]"]
                path = f"{section}.{k}"
            for kk in type(v).model_fields:
                out.append(_line(kk, getattr(v, kk), type(v), f"{path}.{kk}"))
        del field
    out.append("```")
    return "\n".join(out)


def kinds_block() -> str:
    """Per asset kind: the default offer and the default forecast error, with its source."""
    default = Scenario(name="x")
    out = ["| kind | element table | offers | share | price up | price down |",
           "|---|---|---|---|---|---|"]
    for k in KINDS:
        o = default.flexibility.offer(k.name)
        offers = "up and down" if set(k.directions) == {1, -1} else "down (curtailment)"
        out.append(f"| {k.name} | {k.table} | {offers} | {o.share:g} | {o.price_up:g} | "
                   f"{o.price_down:g} |")
    out += ["", "| kind | sigma (of rating) | rho | common | why |", "|---|---|---|---|---|"]
    for k in KINDS:
        e = getattr(default.forecast, k.name)
        out.append(f"| {k.name} | {e.sigma:g} | {e.rho:g} | {e.common:g} | {k.source} |")
    return "\n".join(out)


BLOCKS = {"keys": keys_block, "kinds": kinds_block}


def render(text: str) -> str:
    """`text` with every generated block replaced by what the schema gives today."""
    for name, make in BLOCKS.items():
        begin, end = BEGIN.format(name), END.format(name)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"docs/scenarios.md has no generated block '{name}'")
        text = pattern.sub(lambda _m, b=begin, e=end, f=make: f"{b}\n{f()}\n{e}", text)
    return text


def main(argv: list[str]) -> int:
    text = DOC.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in argv:
        if new != text:
            print(f"{DOC} differs from the schema; run python -m tsodso.scenarios.doc")
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
