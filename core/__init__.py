"""The neutral bottom layer: shared vocabulary, the records passed between stages, and the
AC power-flow model. Every other layer may import it; it imports nothing of tsodso."""
