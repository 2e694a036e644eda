"""A scheme defined here, in the test suite, runs through `run`, `compare` and `report` once
registered: nothing outside its own module needs to know it."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from tsodso.coordination.need import Needs
from tsodso.coordination.schemes import (
    Outcome,
    Scheme,
    register,
    scheme_class,
    scheme_names,
    unregister,
)
from tsodso.core.vocabulary import TSO
from tsodso.results.report import build_report

from tests.conftest import make_scenario
from tsodso.cli import main
from tsodso.comparison import compare
from tsodso.runner import run

TOY = "merit_order_toy"


class MeritOrder(Scheme):
    """The TSO takes offers in price order (lowest first) in the direction the system needs
    until its need is covered, blind to every grid limit."""

    name = TOY
    label = "Merit-order toy market"
    short = "Merit order"
    description = "The TSO takes the cheapest offers until the system is balanced."
    order = 9

    def clear(self, needs: Needs, reports: dict) -> Outcome:
        book = self.book
        need = needs.tso_need_mw
        x = np.zeros(len(book))
        left = abs(need)
        want = 1 if need > 0 else -1
        for i in np.lexsort((np.arange(len(book)), book.price)):
            if left <= 1e-9:
                break
            if book.direction[i] == want and book.mw[i] > 0:
                x[i] = min(book.mw[i], left)
                left -= x[i]
        acts = self.settle_stage(x, TSO, None)
        return Outcome(x, acts, need - float(book.direction @ x))


@pytest.fixture
def toy():
    register(MeritOrder)
    yield MeritOrder
    unregister(TOY)


def test_registry_lists_builtins_in_order():
    names = scheme_names()
    assert names[0] == "none" and scheme_class("none").counterfactual
    assert len(names) == 6 and TOY not in names
    assert [scheme_class(n).order for n in names] == sorted(scheme_class(n).order for n in names)
    with pytest.raises(ValueError, match="unknown scheme 'nope'"):
        scheme_class("nope")


def test_a_name_is_registered_once(toy):
    class Other(MeritOrder):
        pass

    with pytest.raises(ValueError, match="taken"):
        register(Other)


def test_toy_scheme_runs_compares_and_reports(toy, tmp_path):
    assert TOY in scheme_names()
    sc = make_scenario(steps=4, start="2016-06-15T11:00:00")
    kpis = run(sc, TOY, tmp_path / "one.h5")
    with h5py.File(tmp_path / "one.h5") as f:
        assert f.attrs["scheme"] == TOY
        assert f.attrs["scheme_label"] == MeritOrder.label
        buyers = set(f["activations/buyer"].asstr()[:])
        unserved = f["needs/unresolved_imbalance_mw"][:]
        need = f["needs/tso_imbalance_mw"][:]
        price = f["activations/price"][:]
        step = f["activations/step"][:]
    # the merit order covers the need whenever enough is offered (tiny's ladder is large)
    assert buyers == {TSO} and kpis["activated_mwh"] > 0
    assert np.all(np.abs(unserved) < 1e-6) and np.any(np.abs(need) > 0.1)
    # pay-as-bid at the offers' own prices, never above the dearest accepted one per step
    assert np.all(price >= 0) and len(np.unique(step)) == 4

    out = tmp_path / "cmp"
    rows = compare(sc, ["none", TOY], out)
    assert [r["scheme"] for r in rows] == ["none", TOY]
    with (out / "summary.csv").open() as fh:
        table = {r["scheme"]: r for r in csv.DictReader(fh)}
    assert float(table[TOY]["social_cost_eur"]) < float(table["none"]["social_cost_eur"])
    html = build_report(out).read_text(encoding="utf-8")
    assert MeritOrder.label in html and MeritOrder.description in html

    res = CliRunner().invoke(main, ["run", str(_toml(tmp_path, sc)), "--scheme", TOY,
                                    "--out", str(tmp_path / "cli.h5")])
    assert res.exit_code == 0, res.output
    assert f"/ {TOY}:" in res.output


def test_unknown_scheme_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["run", "tiny", "--scheme", "magic", "--steps", "1",
                                    "--out", str(tmp_path / "x.h5")])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: unknown scheme 'magic'; known: none, ")
    assert not (tmp_path / "x.h5").exists()


def _toml(tmp_path, sc):
    from tsodso.scenarios.load import to_toml

    path = tmp_path / "sc.toml"
    path.write_text(to_toml(sc), encoding="utf-8")
    return path
