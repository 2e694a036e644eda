"""DC power transfer distribution factors (PTDF) of the transmission grid.

The clearing of every market that models the T grid sees branch flows as linear functions of
bus injections: ``flow = flow0 + PTDF @ delta_injection``. The matrix is computed once per run
from pandapower's DC power flow model (``rundcpp`` + ``makePTDF`` on the internal ppc) and
indexed back to pandapower bus and branch indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pandapower.auxiliary import _init_rundcpp_options
from pandapower.powerflow import _powerflow
from pandapower.pypower.idx_bus import BUS_TYPE, REF
from pandapower.pypower.makeBdc import makeBdc
from pandapower.pypower.makePTDF import makePTDF
from scipy.sparse.linalg import splu

_BRANCH_TABLES = ("line", "trafo")


@dataclass
class Ptdf:
    """PTDF matrix with the pandapower meaning of its rows and columns.

    ``matrix[l, k]`` is the MW change of the flow on branch ``l`` (measured at the line's from
    side / the trafo's HV side, positive away from that bus) when 1 MW more is injected at
    pandapower bus ``bus[k]`` and withdrawn at the reference bus(es). Buses merged by closed
    bus-bus switches share identical columns; buses outside the energised grid have zero columns.
    """

    matrix: np.ndarray  # (n_branch, n_bus) float, MW/MW
    bus: np.ndarray  # (n_bus,) int: pandapower bus index of each column (all buses of net.bus)
    branch_table: np.ndarray  # (n_branch,) str: "line" / "trafo"
    branch_index: np.ndarray  # (n_branch,) int: pandapower index in that table
    slack_bus: int  # pandapower index of the (first) reference bus
    ref_buses: np.ndarray  # pandapower indices of all reference buses (ext_grids / slack gens)

    @property
    def n_branch(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_bus(self) -> int:
        return self.matrix.shape[1]

    def columns(self, buses) -> np.ndarray:
        """Column positions of pandapower bus indices (raises KeyError for unknown buses)."""
        pos = {int(b): k for k, b in enumerate(self.bus)}
        return np.array([pos[int(b)] for b in np.atleast_1d(buses)], dtype=np.int64)

    def rows(self, table: str, index) -> np.ndarray:
        """Row positions of branches of one pandapower table (raises KeyError if not a row)."""
        pairs = zip(self.branch_table, self.branch_index, strict=True)
        pos = {int(i): r for r, (t, i) in enumerate(pairs) if t == table}
        return np.array([pos[int(i)] for i in np.atleast_1d(index)], dtype=np.int64)


@dataclass(frozen=True)
class TransmissionModel:
    """What the TSO's market knows of its grid: PTDFs and branch limits in PTDF row order."""

    ptdf: np.ndarray  # (rows, PTDF columns)
    rows_of_report: np.ndarray  # PTDF row -> position in the T grid's branch results
    limit_mw: np.ndarray  # per PTDF row
    bus: np.ndarray | None = None  # pandapower bus of each PTDF column

    def flow(self, report) -> np.ndarray:
        """DC-model flows before the market, in PTDF row order, from the T grid's report."""
        return report.p_from_mw[self.rows_of_report]


def _rundcpp(net) -> None:
    """``pp.rundcpp(net)`` with its defaults, but without pandapower's numba bus lookup:
    ``rundcpp`` turns numba on whenever it is installed, and that function is compiled anew in
    every process (not cached; ~1.5 s of each run's set-up). Same options, same DC model
    (tests/test_ptdf.py compares the flows with ``rundcpp``'s)."""
    _init_rundcpp_options(net, trafo_model="t", trafo_loading="current", recycle=None,
                          check_connectivity=True, switch_rx_ratio=2, trafo3w_losses="hv")
    net._options["numba"] = False
    _powerflow(net)


def transmission_ptdf(net) -> Ptdf:
    """Compute the DC PTDF of ``net`` (runs ``pp.rundcpp`` on it; call once per run).

    Rows: in-service lines then trafos of the energised grid (pandapower order). Columns: every
    bus of ``net.bus`` in index order. With a single reference bus this is pandapower's
    ``makePTDF``; with several (e.g. several ext_grids, each holding its angle like ``rundcpp``
    does) all reference buses are grounded, which is what ``rundcpp`` computes.
    """
    _rundcpp(net)
    ppci = net._ppc["internal"]
    bus, branch, base_mva = ppci["bus"], ppci["branch"], ppci["baseMVA"]
    refs = np.flatnonzero(bus[:, BUS_TYPE] == REF)
    if len(refs) == 0:
        raise ValueError("the grid has no reference bus (ext_grid or slack gen)")
    if len(refs) == 1:
        h = makePTDF(base_mva, bus, branch, slack=int(refs[0]), using_sparse_solver=True)
    else:
        h = _multi_ref_ptdf(bus, branch, refs)

    # ppc branch rows -> ppci rows (out-of-service branches are dropped in the ppci)
    in_service = np.asarray(ppci["branch_is"], dtype=bool)
    ppci_row = np.cumsum(in_service) - 1
    rows, tables, indices = [], [], []
    for table in _BRANCH_TABLES:
        lookup = net._pd2ppc_lookups["branch"].get(table)
        if lookup is None or len(net[table]) == 0:
            continue
        start, _end = lookup
        for k, idx in enumerate(net[table].index):
            r = start + k
            if in_service[r]:
                rows.append(ppci_row[r])
                tables.append(table)
                indices.append(int(idx))
    rows = np.asarray(rows, dtype=np.int64)

    # pandapower bus -> ppci column (several pandapower buses may share one ppc bus)
    pd_bus = net.bus.index.to_numpy(dtype=np.int64)
    lookup = net._pd2ppc_lookups["bus"]
    n_ppci = bus.shape[0]
    col = np.full(len(pd_bus), -1, dtype=np.int64)
    known = pd_bus < len(lookup)
    col[known] = lookup[pd_bus[known]]
    energised = (col >= 0) & (col < n_ppci)

    matrix = np.zeros((len(rows), len(pd_bus)))
    if len(rows):
        matrix[:, energised] = h[np.ix_(rows, col[energised])]

    ref_pd = pd_bus[np.isin(col, refs)]
    first_ref = pd_bus[col == refs[0]]
    return Ptdf(
        matrix=matrix,
        bus=pd_bus,
        branch_table=np.asarray(tables, dtype=object).astype(str),
        branch_index=np.asarray(indices, dtype=np.int64),
        slack_bus=int(first_ref[0]),
        ref_buses=ref_pd,
    )


def _multi_ref_ptdf(bus: np.ndarray, branch: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """PTDF with all reference buses at fixed angle (the DC model ``rundcpp`` solves)."""
    bbus, bf, *_ = makeBdc(bus, branch, return_csr=False)
    nb = bus.shape[0]
    free = np.setdiff1d(np.arange(nb), refs)
    h = np.zeros((branch.shape[0], nb))
    if len(free):
        lu = splu(bbus.real[free][:, free].tocsc())
        # flows = Bf[:, free] @ Bbus_ff^-1 @ P_free  ->  H_free = (Bbus_ff^-T Bf_free^T)^T
        rhs = bf.real[:, free].toarray().T
        h[:, free] = lu.solve(rhs, trans="T").T
    return h


def dc_flows(ptdf: Ptdf, injections_by_bus) -> np.ndarray:
    """Branch flow changes (MW, row order of ``ptdf``) caused by bus injection changes (MW).

    ``injections_by_bus`` is an array in the column order of ``ptdf`` (``ptdf.bus``), or a
    mapping {pandapower bus index: MW}. The reference bus(es) absorb the net injection.
    """
    if isinstance(injections_by_bus, dict) or hasattr(injections_by_bus, "items"):
        inj = np.zeros(ptdf.n_bus)
        buses = list(injections_by_bus.keys())
        if buses:
            np.add.at(inj, ptdf.columns(buses), np.asarray(list(injections_by_bus.values()),
                                                           dtype=float))
    else:
        inj = np.asarray(injections_by_bus, dtype=float)
        if inj.shape != (ptdf.n_bus,):
            raise ValueError(f"expected {ptdf.n_bus} bus injections, got shape {inj.shape}")
    return ptdf.matrix @ inj
