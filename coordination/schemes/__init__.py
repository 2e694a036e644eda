"""Coordination schemes as plug-ins: one module per scheme, one registry built from the
classes (modelled on ASSUME's registry of clearing mechanisms).

A new scheme is one module with a `Scheme` subclass decorated with `@register`; everything
else (CLI choices, compare, the results file's scheme description, the report) reads the
registry or the class. Built-in schemes are registered when this package is imported.
"""

from __future__ import annotations

# the built-in schemes register themselves on import
from tsodso.coordination.schemes import (  # noqa: E402, F401
    centralized,
    common,
    integrated,
    local,
    none,
    shared_balancing,
)
from tsodso.coordination.schemes.base import MarketSetup, Outcome, Scheme
from tsodso.coordination.schemes.registry import (
    make_scheme,
    register,
    scheme_class,
    scheme_names,
    unregister,
)

__all__ = ["MarketSetup", "Outcome", "Scheme", "make_scheme", "register", "scheme_class",
           "scheme_names", "unregister"]
