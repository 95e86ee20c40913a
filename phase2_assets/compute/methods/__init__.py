"""The registry of retrieval methods: one module per method, one row per method in the table.

Adding a method: write ``phase2_assets/compute/methods/<name>.py`` with a ``Method`` subclass
decorated with ``@register`` (name, budget, description, ``code_bits``, ``memory``, ``build``,
``search``), import it below, and add its known-answer test. The evaluation assets pick it up and
the results table gains rows, not columns.
"""

from phase2_assets.compute.methods import (  # noqa: F401  (importing registers the method)
    binary,
    binary_asym,
    binary_rerank,
    itq,
    opq,
    pca_int8,
    pq,
    rabitq,
    reference,
    sign_centered,
)
from phase2_assets.compute.methods.base import (
    METHODS,
    Built,
    Memory,
    Method,
    Settings,
    methods_for,
    register,
)

__all__ = ["METHODS", "Built", "Memory", "Method", "Settings", "methods_for", "register"]
