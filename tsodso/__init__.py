"""tsodso: TSO-DSO coordination co-simulator."""

__version__ = "0.1.0"
