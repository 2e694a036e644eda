"""docs/scenarios.md tells the truth: its key reference and per-kind defaults are generated
from the schema, and partial sections keep the kind's defaults key by key."""

from __future__ import annotations

import pytest
from tsodso.core.assets import KINDS
from tsodso.scenarios import doc
from tsodso.scenarios.load import load, parse
from tsodso.scenarios.schema import Scenario


def test_doc_blocks_equal_the_generated_ones():
    text = doc.DOC.read_text(encoding="utf-8")
    assert doc.render(text) == text, "run: python -m tsodso.scenarios.doc"


def _paths(model, prefix=""):
    for key, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, Scenario.__mro__[1]) and \
                hasattr(sub, "model_fields"):
            yield from _paths(sub, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_key_has_a_meaning():
    kinds = {k.name for k in KINDS}
    for path in _paths(Scenario):
        parts = path.split(".")
        if len(parts) == 3 and parts[1] in kinds:
            parts[1] = "<kind>"
        assert ".".join(parts) in doc.MEANING, f"docs: no meaning for {path}"


@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_partial_sections_keep_the_kinds_defaults(kind):
    default = Scenario(name="x")
    sc = parse(f'name = "x"\n[flexibility.{kind}]\nprice_down = 7.0\n'
               f'[forecast.{kind}]\nsigma = 0.2\n', "x")
    offer, base = sc.flexibility.offer(kind), default.flexibility.offer(kind)
    assert (offer.share, offer.price_up, offer.price_down) == (base.share, base.price_up, 7.0)
    err, base_err = getattr(sc.forecast, kind), getattr(default.forecast, kind)
    assert (err.sigma, err.rho, err.common) == (0.2, base_err.rho, base_err.common)


def test_documented_defaults_of_run():
    run = Scenario(name="x").run
    text = doc.DOC.read_text(encoding="utf-8")
    assert f"start = {run.start.isoformat()}" in text and f"seed = {run.seed}" in text


def test_builtins_resolve_as_before():
    """Per-kind sections: the built-ins' resolved values are the asset table's defaults."""
    for name in ("tiny", "default"):
        sc = load(name)
        for k in KINDS:
            e = getattr(sc.forecast, k.name)
            assert (e.sigma, e.rho, e.common) == k.error
            o = sc.flexibility.offer(k.name)
            assert (o.share, o.price_up, o.price_down) == k.offer
