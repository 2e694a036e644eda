"""Names of the results file format shared by the writer and the reader: one definition each.

The scheme description attributes let a results file describe its own coordination scheme,
so that reports and tables never need to know scheme names. Files written before these
attributes existed are read with ``SCHEME_ATTR_DEFAULTS`` (label and short name fall back to
the scheme name).
"""

from __future__ import annotations

#: Value of the root attribute ``format``.
FORMAT_NAME = "tsodso-results"
#: Value of the root attribute ``format_version`` (incremented on incompatible changes).
FORMAT_VERSION = 3  # 3: /interfaces/tap_pos

#: Root attributes describing the scheme and the run, and their value when a file lacks them.
#: ``scheme_label`` and ``scheme_short`` default to the scheme name (filled in by the reader).
SCHEME_ATTR_DEFAULTS: dict[str, str | bool | int] = {
    "scheme_label": "",
    "scheme_short": "",
    "scheme_description": "",
    "scheme_counterfactual": False,
    "scheme_balances_areas": False,
    "scheme_order": 100,
    "scheme_operator": "",
    "builtin": "",
}

#: Description of each per-step cost dataset (EUR in the step).
COST_DESCRIPTIONS: dict[str, str] = {
    "resource": "resource cost of the activations at the providers' bid prices (social)",
    "imbalance": "value of the imbalance left unserved (social)",
    "overload_t": "value of MVA x h above T branch ratings after the market (social)",
    "overload_d": "value of MVA x h above D branch ratings after the market (social)",
    "voltage_t": "value of pu x h outside the T voltage band after the market (social)",
    "voltage_d": "value of pu x h outside the D voltage band after the market (social)",
    "tso": "what the TSO paid for flexibility under the pricing rule (a transfer)",
    "dso": "what the DSOs paid for flexibility under the pricing rule (a transfer)",
    "brp": "what balance responsible parties paid for flexibility (a transfer)",
    "brp_imbalance_charges": "BRPs' open positions settled with the TSO at the imbalance "
                             "price (a transfer; + = BRPs paid)",
    "dso_imbalance_charges": "DSOs' interface schedule deviations settled with the TSO at the "
                             "imbalance price (a transfer; + = DSOs paid)",
    "congestion_rent": "part of pay-as-clear payments priced by network constraints, not by "
                       "the balance (a transfer, included in the payments)",
    "social": "social cost: the sum of the social components (resource cost and unserved "
              "values); transfers are not part of it",
}
#: Units and descriptions of the per-step unserved quantities.
UNSERVED_UNITS: dict[str, str] = {"imbalance_mwh": "MWh", "overload_t_mwh": "MWh",
                                  "overload_d_mwh": "MWh", "voltage_t_puh": "pu h",
                                  "voltage_d_puh": "pu h"}
UNSERVED_DESCRIPTIONS: dict[str, str] = {
    "imbalance_mwh": "balancing energy the market left unserved",
    "overload_t_mwh": "MVA x h above T branch ratings after the market (AC)",
    "overload_d_mwh": "MVA x h above D branch ratings after the market (AC)",
    "voltage_t_puh": "pu x h outside the T voltage band after the market, summed over buses",
    "voltage_d_puh": "pu x h outside the D voltage band after the market, summed over buses",
}

#: Fixed byte widths (UTF-8) of the string columns of the event tables. Variable-length
#: strings cannot be appended safely in SWMR mode (their global heap is not SWMR-safe: a
#: killed writer can leave rows pointing past the end of the file), so these columns are
#: fixed-length, null-padded UTF-8. A longer value is rejected by ``append``.
TABLE_STR_BYTES: dict[str, int] = {
    "resource": 128,
    "kind": 32,
    "grid": 64,
    "level": 8,
    "buyer": 96,
    "detail": 160,
}
#: String columns cut to their width instead of rejected (free text).
_CUT_STR = frozenset({"detail"})

#: Table name -> ordered (column, numpy dtype or string width, units, description).
TABLE_COLUMNS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "activations": (
        ("step", "int64", "1", "step index (row of /time) of the activation"),
        ("resource", "str", "1", "activated resource"),
        ("kind", "str", "1", "asset kind of the resource"),
        ("grid", "str", "1", "grid the resource is connected to"),
        ("level", "str", "1", "level of that grid: T or D"),
        ("buyer", "str", "1", "who bought it: TSO, DSO:<grid> or BRP:<id>"),
        ("direction", "int8", "1", "+1 up (more injection / less consumption), -1 down"),
        ("mw", "float64", "MW", "activated power (magnitude, >= 0)"),
        ("price", "float64", "EUR/MWh", "price paid under the pricing rule"),
        ("cost", "float64", "EUR", "what the buyer paid over the step (a transfer)"),
        ("bid_price", "float64", "EUR/MWh", "price the provider asked (its resource cost)"),
    ),
    "conflicts": (
        ("step", "int64", "1", "step index (row of /time) of the conflict"),
        ("kind", "str", "1", "conflict kind"),
        ("grid", "str", "1", "grid (D grid / interface) where the conflict occurred"),
        ("mw", "float64", "MW", "conflict volume"),
    ),
    "events": (
        ("step", "int64", "1", "step index (row of /time) of the event"),
        ("kind", "str", "1", "event kind: powerflow_not_converged, coupling_iteration_limit,"
         " market_slack"),
        ("grid", "str", "1", "grid concerned, empty for the whole system"),
        ("detail", "str", "1", "what happened and what was done"),
    ),
}
