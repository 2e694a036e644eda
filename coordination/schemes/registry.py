"""The registry of coordination schemes: name -> class, filled by the `@register` decorator
of each scheme module (modelled on ASSUME's registry of clearing mechanisms)."""

from __future__ import annotations

from tsodso.coordination.schemes.base import MarketSetup, Scheme

_REGISTRY: dict[str, type[Scheme]] = {}


def register(cls: type[Scheme]) -> type[Scheme]:
    """Class decorator: make a scheme known by its `name` (unique, non-empty)."""
    if not cls.name:
        raise ValueError(f"scheme class {cls.__name__} has no name")
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        raise ValueError(f"scheme name {cls.name!r} is taken by {known.__name__}")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a scheme (for tests and interactive sessions that register their own)."""
    _REGISTRY.pop(name, None)


def scheme_names() -> tuple[str, ...]:
    """Registered scheme names, in their `order` (then name)."""
    return tuple(sorted(_REGISTRY, key=lambda n: (_REGISTRY[n].order, n)))


def scheme_class(name: str) -> type[Scheme]:
    """The class of a registered scheme; ValueError naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown scheme '{name}' (known: {', '.join(scheme_names())})") \
            from None


def make_scheme(name: str, setup: MarketSetup) -> Scheme:
    """Build the scheme `name` for one run."""
    return scheme_class(name)(setup)
