"""The regulator report (`results.report.build_report`): sections, ranking and numbers read
back from the results files, one self-contained HTML file, scenario text escaped, the page
rendered in headless Chromium (skipped where Chromium or playwright is not installed), a new
section is one function and one list entry, and the results layer knows no scheme names."""

from __future__ import annotations

import ast
import base64
import csv
import shutil
import struct
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pytest
from tsodso.coordination.schemes import scheme_names
from tsodso.results.report import SECTIONS, build_report, sections
from tsodso.scenarios.load import load, parse

from tests.conftest import make_scenario, scenario_text
from tsodso.comparison import compare
from tsodso.runner import run

# Tight D limits on the tiny grid, so that D violations, DSO purchases and conflicts occur.
TIGHT_D = "[limits.D]\nvm_max_pu = 1.008\nloading_max_percent = 25.0\n"
STEPS = 8
EVIL_NAME = "<script>alert(1)</script>"
EVIL_DESC = "<img src=x onerror=alert(2)> & co"
CHROMIUM = Path("/usr/bin/chromium")
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic"]


class Page(HTMLParser):
    """Tables (id -> rows of (attributes, cell texts)), element texts by id, all attributes."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[tuple[dict, list[str]]]] = {}
        self.text_by_id: dict[str, str] = {}
        self.sections: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.figures: list[dict] = []
        self._table: str | None = None
        self._row: tuple[dict, list[str]] | None = None
        self._cell: list[str] | None = None
        self._open: list[tuple[str, str | None]] = []
        self._texts: dict[str, list[str]] = {}
        self._figure: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if tag == "section":
            self.sections.append(a.get("id", ""))
        if tag == "table":
            self._table = a.get("id", f"anon{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self._row = (a, [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag == "figure":
            self._figure = {"img": None, "caption": ""}
        if tag == "img" and self._figure is not None:
            self._figure["img"] = a
        if tag == "figcaption" and self._figure is not None:
            self._figure["in_caption"] = True
        if tag not in ("img", "meta", "br", "input"):
            self._open.append((tag, a.get("id")))
            if a.get("id"):
                self._texts[a["id"]] = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        if tag == "figcaption" and self._figure is not None:
            self._figure["in_caption"] = False
        if tag == "figure" and self._figure is not None:
            self.figures.append(self._figure)
            self._figure = None
        while self._open:
            t, ident = self._open.pop()
            if ident:
                self.text_by_id[ident] = " ".join("".join(self._texts[ident]).split())
            if t == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        for _, ident in self._open:
            if ident:
                self._texts[ident].append(data)
        if self._figure is not None and self._figure.get("in_caption"):
            self._figure["caption"] += data

    def body_rows(self, tid: str) -> list[tuple[dict, list[str]]]:
        """Rows of a table without its header row."""
        return self.tables[tid][1:]

    def header(self, tid: str) -> list[str]:
        return self.tables[tid][0][1]


def value(cell: str) -> tuple[float, float]:
    """A shown number and half its last shown digit (the rounding tolerance)."""
    text = cell.replace(",", "").replace("−", "-").replace("%", "").strip()
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(text), 0.5 * 10.0 ** -decimals + 1e-9


def assert_shown(cell: str, expected: float) -> None:
    shown, tol = value(cell)
    assert abs(shown - expected) <= tol, (cell, expected)


def label_of(path: Path) -> str:
    """The scheme's plain-language name as the report shows it (stored, else the scheme)."""
    with h5py.File(path) as f:
        return str(f.attrs.get("scheme_label", "") or f.attrs["scheme"])


@pytest.fixture(scope="module")
def cmp_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cmp")
    compare(make_scenario(steps=STEPS, extra=TIGHT_D), list(scheme_names()), out)
    return out


@pytest.fixture(scope="module")
def report(cmp_dir) -> Path:
    return build_report(cmp_dir)


@pytest.fixture(scope="module")
def page(report) -> Page:
    return Page(report.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def summary(cmp_dir) -> list[dict]:
    with (cmp_dir / "summary.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory) -> Path:
    """A one-run report of a scenario whose name and description contain HTML."""
    text = scenario_text(steps=2).replace(
        'name = "test-tiny"', f'name = "{EVIL_NAME}"\ndescription = "{EVIL_DESC}"')
    sc = parse(text, "evil")
    assert sc.name == EVIL_NAME
    path = tmp_path_factory.mktemp("evil") / "run.h5"
    run(sc, "centralized", path)
    return build_report(path)


def test_sections_present(report, page, cmp_dir):
    assert report == cmp_dir / "report.html"
    assert page.sections == [sid for sid, _, _ in SECTIONS]
    for sid, _, _ in SECTIONS:
        assert page.text_by_id[sid], sid


def test_ranking_matches_summary_totals(page, summary):
    expected = sorted(summary, key=lambda r: float(r["social_cost_eur"]))  # stable, like the file
    rows = page.body_rows("ranking")
    assert [a["data-scheme"] for a, _ in rows] == [r["scheme"] for r in expected]
    best = float(expected[0]["social_cost_eur"])
    for (_, cells), want in zip(rows, expected, strict=True):
        total = float(want["social_cost_eur"])
        assert_shown(cells[2], total)
        assert_shown(cells[3], float(want["resource_cost_eur"]))
        assert_shown(cells[4], float(want["unserved_value_eur"]))
        assert_shown(cells[5], sum(float(want[f"{b}_paid_eur"]) for b in ("tso", "dso", "brp")))
        assert_shown(cells[6], total - best)
        assert_shown(cells[7], (total - best) / best * 100.0)
    # the cheapest scheme is named above the table
    cheapest_label = rows[0][1][1].rsplit(" ", 1)[0]
    assert cheapest_label in page.text_by_id["cheapest"]
    assert_shown(page.text_by_id["cheapest"].split(" social cost of ")[1].split(" EUR")[0], best)


def test_findings_from_the_data(report, summary, cmp_dir):
    text = report.read_text(encoding="utf-8")
    items = text.split('<ul id="findings">')[1].split("</ul>")[0].count("<li>")
    assert 3 <= items <= 5
    plain = " ".join(Page(text).text_by_id["findings"].split())
    top = max(summary, key=lambda r: int(r["conflicts"]))  # first of equals, like the report
    assert (f"{label_of(cmp_dir / (top['scheme'] + '.h5'))} records the most TSO–DSO conflicts: "
            f"{int(top['conflicts']):,}") in plain
    dso = max((r for r in summary if r["scheme"] != "none"),
              key=lambda r: float(r["dso_paid_eur"]))
    assert f"The DSOs pay most in {label_of(cmp_dir / (dso['scheme'] + '.h5'))}: " in plain


def test_cost_split_matches_summary(page, summary):
    by_scheme = {r["scheme"]: r for r in summary}
    parts = ["resource_cost_eur", "imbalance_value_eur", "overload_t_value_eur",
             "overload_d_value_eur", "voltage_t_value_eur", "voltage_d_value_eur",
             "social_cost_eur"]
    rows = page.body_rows("cost-split")
    assert [a["data-scheme"] for a, _ in rows] == [r["scheme"] for r in summary]
    for attrs, cells in rows:
        want = by_scheme[attrs["data-scheme"]]
        for cell, part in zip(cells[1:], parts, strict=True):
            assert_shown(cell, float(want[part]))
        # the parts add up to the social cost: payments are not in it
        assert float(want["social_cost_eur"]) == pytest.approx(
            sum(float(want[p]) for p in parts[:-1]), rel=1e-9, abs=1e-6)
    transfers = page.body_rows("transfers")
    for attrs, cells in transfers:
        want = by_scheme[attrs["data-scheme"]]
        for cell, part in zip(cells[1:], ("tso_paid_eur", "dso_paid_eur", "brp_paid_eur"),
                              strict=False):
            assert_shown(cell, float(want[part]))


def test_dso_costs_per_grid_match_file(page, cmp_dir, summary):
    schemes = [r["scheme"] for r in summary]
    rows = {cells[0]: cells[1:] for _, cells in page.body_rows("dso-costs")}
    for j, scheme in enumerate(schemes):
        with h5py.File(cmp_dir / f"{scheme}.h5") as f:
            grids = f["costs/dso_grid"].asstr()[:]
            per_grid = f["costs/dso_by_grid"][:].sum(axis=0)
        for g, eur in zip(grids, per_grid, strict=True):
            assert_shown(rows[g][j], eur)
        assert_shown(rows["All DSOs"][j], per_grid.sum())
    # the tight D limits make some DSO buy something
    assert any(float(r["dso_paid_eur"]) > 1.0 for r in summary)


def test_cross_level_matches_activations(page, cmp_dir, summary):
    rows = {a["data-scheme"]: cells for a, cells in page.body_rows("cross")}
    for r in summary:
        with h5py.File(cmp_dir / f"{r['scheme']}.h5") as f:
            buyer = f["activations/buyer"].asstr()[:]
            level = f["activations/level"].asstr()[:]
            mwh = f["activations/mw"][:] * 0.25  # 15-minute steps
            cost = f["activations/cost"][:]
        tso_d = (buyer == "TSO") & (level == "D")
        dso_t = np.char.startswith(buyer.astype(str), "DSO:") & (level == "T")
        cells = rows[r["scheme"]]
        assert_shown(cells[1], mwh[tso_d].sum())
        assert_shown(cells[2], cost[tso_d].sum())
        assert_shown(cells[3], mwh[dso_t].sum())
        assert_shown(cells[5], float(r["cross_level_mwh"]))
    assert any(float(r["cross_level_mwh"]) > 0 for r in summary)


def test_conflicts_and_violations_match_files(page, cmp_dir, summary):
    schemes = [r["scheme"] for r in summary]
    total_row = next(c for a, c in page.body_rows("conflict-kinds") if a["data-kind"] == "all")
    for cell, r in zip(total_row[1:], summary, strict=True):
        records, volume = (s.strip() for s in cell.split("/"))
        assert int(records.replace(",", "")) == int(r["conflicts"])
        assert_shown(volume, float(r["conflict_mwh"]))
    assert sum(int(r["conflicts"]) for r in summary) > 0
    rows = {a["data-scheme"]: cells for a, cells in page.body_rows("violations-D")}
    for scheme in schemes:
        volt = over = 0
        with h5py.File(cmp_dir / f"{scheme}.h5") as f:
            for g in f["grids"].values():
                if g.attrs["level"] != "D":
                    continue
                vm, ld = g["vm_pu"][:], g["branch_loading_percent"][:]
                volt += int(np.sum((vm > 1.008) | (vm < 0.9)))  # TIGHT_D band
                over += int(np.sum(ld > 25.0))
        assert int(rows[scheme][1].replace(",", "")) == volt
        assert int(rows[scheme][2].replace(",", "")) == over


def test_self_contained(report, page):
    text = report.read_text(encoding="utf-8")
    for tag, name, val in page.attrs:
        if name in ("src", "href"):
            assert "http://" not in val and "https://" not in val, (tag, val[:80])
            assert val.startswith(("data:", "#")), (tag, val[:80])
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "url(" not in text and "@import" not in text
    assert len(page.figures) >= 6
    for fig in page.figures:
        img = fig["img"]
        assert img["alt"].strip() and fig["caption"].strip()
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        w, h = struct.unpack(">II", png[16:24])
        assert (w, h) == (int(img["width"]), int(img["height"])) and w > 100 and h > 50


def test_reproduce_command_and_stored_scenario(page, cmp_dir):
    cmd = page.text_by_id["command"]
    assert cmd == (f"tsodso compare test-tiny.toml --schemes {','.join(scheme_names())} "
                   f"--steps {STEPS} --seed 1 --out {cmp_dir}")
    link = next(v for t, k, v in page.attrs if t == "a" and k == "href" and v.startswith("data:"))
    toml_text = base64.b64decode(link.split(",", 1)[1]).decode("utf-8")
    with h5py.File(cmp_dir / "common.h5") as f:
        assert toml_text == f.attrs["scenario_toml"]
    data = tomllib.loads(toml_text)
    assert data["run"]["steps"] == STEPS and data["limits"]["D"]["vm_max_pu"] == 1.008
    # the scenario shown on the page is the stored one
    assert page.text_by_id["scenario-toml"] == " ".join(toml_text.split())


def test_builtin_scenario_is_reproduced_by_name(tmp_path):
    path = tmp_path / "one.h5"
    run(load("tiny", {"run.steps": 2, "run.seed": 3}), "none", path)
    page = Page(build_report(path).read_text(encoding="utf-8"))
    assert page.text_by_id["command"] == (
        f"tsodso run tiny --scheme none --steps 2 --seed 3 --out {path}")
    assert [a["data-scheme"] for a, _ in page.body_rows("ranking")] == ["none"]


def test_scenario_html_is_escaped(evil_report):
    text = evil_report.read_text(encoding="utf-8")
    assert EVIL_NAME not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(2)&gt; &amp; co" in text
    page = Page(text)
    assert page.text_by_id["scenario-name"] == EVIL_NAME  # shown as text
    assert EVIL_DESC in page.text_by_id["scenario-facts"]


def test_new_section_is_one_function_and_one_entry(cmp_dir, tmp_path, monkeypatch):
    def extra(rep) -> str:
        return f'<p id="extra-body">{len(rep.runs)} runs, cheapest {rep.ranked[0][1].key}</p>'

    monkeypatch.setattr(sections, "SECTIONS", [*SECTIONS, ("extra", "An extra section", extra)])
    page = Page(build_report(cmp_dir, tmp_path / "r.html").read_text(encoding="utf-8"))
    assert page.sections == [*(sid for sid, _, _ in SECTIONS), "extra"]
    assert page.text_by_id["extra"].startswith(f"{len(SECTIONS) + 1}. An extra section")
    assert page.text_by_id["extra-body"].startswith(f"{len(scheme_names())} runs, cheapest ")
    assert ('href', '#extra') in [(k, v) for t, k, v in page.attrs if t == "a"]


def test_counterfactual_and_labels_come_from_the_files(cmp_dir, tmp_path):
    """A label stored in the file is shown; the counterfactual is whatever the file says."""
    src = tmp_path / "cmp"
    src.mkdir()
    for s in ("none", "local"):
        shutil.copy(cmp_dir / f"{s}.h5", src / f"{s}.h5")
    with h5py.File(src / "local.h5", "r+") as f:
        f.attrs["scheme_label"] = "Local <markets>"
        f.attrs["scheme_description"] = "Each DSO buys first & passes the rest on."
    page = Page(build_report(src).read_text(encoding="utf-8"))
    assert "Local <markets>" in page.text_by_id["cheapest"] + page.text_by_id["findings"]
    assert "Each DSO buys first & passes the rest on." in page.text_by_id["assumptions"]
    assert ("Without coordination the same period has a social cost of"
            in page.text_by_id["findings"])
    with h5py.File(src / "none.h5", "r+") as f:
        f.attrs["scheme_counterfactual"] = np.bool_(False)
    page = Page(build_report(src).read_text(encoding="utf-8"))
    assert "Without coordination" not in page.text_by_id["findings"]


def _results_sources() -> list[Path]:
    files = sorted(RESULTS_DIR.rglob("*.py"))
    assert len(files) > 8
    return files


def test_results_code_names_no_scheme():
    """Scheme names are data in the files, never literals or branches in the results layer."""
    found = []
    for path in _results_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # plotting options such as edgecolors="none" are keyword values, not scheme names
        options = {id(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword)}
        for node in ast.walk(tree):
            if id(node) in options:
                continue
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                names = scheme_names()
                if text in names or "shared_balancing" in text or "Shared balancing" in text:
                    found.append(f"{path.name}:{node.lineno}: {text[:60]!r}")
            if isinstance(node, ast.Name | ast.Attribute):
                name = node.id if isinstance(node, ast.Name) else node.attr
                if name.startswith("SCHEME_") and name != "SCHEME_ATTR_DEFAULTS":
                    found.append(f"{path.name}:{node.lineno}: {name}")
    assert found == []


def test_results_layer_imports_only_core_and_results():
    banned = ("tsodso.scenarios", "tsodso.simulators", "tsodso.coordination", "tsodso.runner",
              "tsodso.comparison", "tsodso.cli")
    found = []
    for path in _results_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {m}" for m in mods if m.startswith(banned)]
    assert found == []


# ---------------------------------------------------------------------------------------------
# headless Chromium
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (/usr/bin/chromium; Debian: apt-get install "
                    "chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    exe = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    """Load a file in a fresh page; returns (page, console errors, request URLs, dialogs)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, requests, dialogs = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, errors, requests, dialogs


def test_report_in_headless_chromium(browser, report, tmp_path):
    page, errors, requests, _ = _open(browser, report)
    for sid, _, _ in SECTIONS:
        assert page.locator(f"section#{sid} h2").count() == 1, sid
        assert page.locator(f"section#{sid}").is_visible()
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(images) >= 6
    assert all(done and w > 0 and h > 0 for done, w, h in images), images
    assert errors == []
    url = report.resolve().as_uri()
    assert all(u == url or u.startswith("data:") for u in requests), requests
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()


def test_scenario_html_is_text_in_chromium(browser, evil_report):
    page, errors, requests, dialogs = _open(browser, evil_report)
    assert dialogs == [] and errors == []
    assert page.locator("#scenario-name").inner_text() == EVIL_NAME
    assert page.locator("script").count() == 0
    assert page.locator("img:not([src^='data:'])").count() == 0
    page.close()
