"""What a retrieval method is: its memory at a bit budget, how to build its index, how to search.

Every method goes one way: ``build`` returns a ``Built`` (the searchable index and, for trained
methods, its training report), ``search`` takes that ``Built``, and
``evaluation.search_and_score`` turns the ids it returns into the method's row. A method that
declares how its index is kept (``stored``) can be listed in the config's ``methods.store``: its
index is then a study asset of its own (the instrument's codes, PQ, int8 by default), built once
and scored by its own metrics asset; every other method is built where it is evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from phase2_assets.compute.methods import instrument


@dataclass(frozen=True)
class Settings:
    """The parameters methods need, taken from the study config by the Dagster layer. Its
    defaults are the study schema's too (``config/study.py`` reads them from here), so a
    method built in a test or a bench sees what a study that sets nothing would give it."""

    projection_seed: int = 42
    pq_seed: int = 7
    pq_nbits: int = 8
    pq_train_size: int = 65536
    query_block: int = 256
    corpus_block: int = 65536
    # Each method's own parameters (its ``Params``), by method name: the study's methods.<name>.
    method_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The study's check thresholds (its ``checks:`` section) and the seed of the checks' samples,
    # read by the checks stored methods run on their index and their row.
    check_thresholds: Mapping[str, Any] = field(default_factory=dict)
    checks_seed: int = 0
    # Called with (done, total) after each block of a long search or encode: the run log's
    # progress lines. Not a parameter of the result, so it takes no part in equality.
    progress: Callable[[int, int], None] | None = field(default=None, compare=False)

    def params(self, method: Method) -> BaseModel:
        """``method``'s parameters: the configured ones over the defaults its schema declares."""
        return method.Params.model_validate(dict(self.method_params.get(method.name, {})))


def hamming_search(query_codes: np.ndarray, codes: np.ndarray, k: int, settings: Settings):
    """The instrument's exact Hamming top-k ids with the study's block sizes, for every
    Hamming-searching method (ties by lower corpus row)."""
    return instrument.hamming_topk(
        query_codes,
        codes,
        k,
        query_block=settings.query_block,
        corpus_block=settings.corpus_block,
        progress=settings.progress,
    )[0]


@dataclass(frozen=True)
class Built:
    """What ``build`` returns for every method: the index ``search`` reads, and how its
    training went (``quantizers.TrainingReport``) for the methods that train."""

    index: Any
    training: Any = None

    @property
    def ntotal(self) -> int:
        index = self.index
        return int(index.ntotal) if hasattr(index, "ntotal") else len(index)


@dataclass(frozen=True)
class Memory:
    """Honest memory accounting (docs/methodology.md#memory-accounting), in separate columns."""

    bytes_per_vector: float  # the code alone
    fixed_overhead_bytes: int  # projection matrices, codebooks, rotations, quantiser ranges
    extra_bytes_per_vector: float = 0.0  # stored beside each code (e.g. RaBitQ's factors)
    external_bytes_per_vector: float = 0.0  # must stay elsewhere (re-ranking floats on disk)


@dataclass(frozen=True)
class Check:
    """A sanity test a stored method runs on its own index or its own row: an asset check in
    the UI, so the description is written for the researcher reading it."""

    name: str
    description: str
    warn_only: bool = False
    blocking: bool = False


@dataclass(frozen=True)
class Stored:
    """How a method's index is kept as a study asset of its own when ``methods.store`` lists
    the method: the index asset's name and file format, the plan's experiment tags of the index
    and of the method's row, what the UI says about the index (formatted with the ``Settings``),
    which seeds it records, and the checks run on the index and on the row."""

    asset: str
    format: str  # "npy": a numpy array (memory-mapped on load); "faiss": a faiss index
    experiments: tuple[str, str]
    description: str
    seeds: tuple[tuple[str, str], ...] = ()  # (metadata name, Settings field)
    index_checks: tuple[Check, ...] = ()
    row_checks: tuple[Check, ...] = ()
    memory_heavy: bool = True  # its build takes the memory_heavy pool


class NoParams(BaseModel):
    """A method with no parameters of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Plan:
    """What the study's tiers ask for on one (dataset, model) pair."""

    bits: frozenset[int] = frozenset()  # binary code lengths
    pq_bytes: frozenset[int] = frozenset()  # PQ sizes (bytes per vector)


class Method:
    """Base class: ``budget`` is 'reference' (one row per model, sized by its dimension) or
    'bits' (one row per bit budget that the plan's ``follows`` list holds: the binary code
    lengths, or the PQ sizes for the PQ family)."""

    name: ClassVar[str]
    budget: ClassVar[str]
    description: ClassVar[str]
    follows: ClassVar[str] = "binary"  # "binary": the plan's code lengths; "pq": its PQ sizes
    family: ClassVar[str] = "binary"  # a key of FAMILIES: how the report groups its legend
    in_plan: ClassVar[bool] = False  # the study plan's own rows (float32, int8, binary, PQ)
    Params: ClassVar[type[BaseModel]] = NoParams  # validates methods.<name> in the study config
    stored: ClassVar[Stored | None] = None  # how its index is kept, if methods.store lists it
    # What the methods table (docs/methods.md, written by ``python -m
    # phase2_assets.compute.methods.table``) says of the method, beside its description:
    peer: ClassVar[str | None] = None  # what a search engineer already runs that it reproduces
    code_bytes: ClassVar[str | None] = None  # bytes_per_vector in b (bits) and d (dimension)
    fits_when: ClassVar[str] = ""  # ``fits`` in b and d, where it is not always true
    also_counted: ClassVar[str] = "—"  # the memory it is charged for beside its codes
    # Whether ``search`` may return fewer than k results for a query (an inverted-file or graph
    # index that finds fewer candidates, faiss's "no result"), padding its row with -1 at the
    # end. Every method registered here searches exhaustively, so none does; the evaluation
    # refuses a -1 from a method that does not declare it, and scores the padding as misses.
    may_return_fewer: ClassVar[bool] = False

    def fits(self, dim: int, bits: int | None) -> bool:
        """Whether the method can be built at all at this dimension and budget."""
        return True

    def applies(self, dim: int, bits: int | None, plan: Plan) -> bool:
        if self.budget == "reference":
            return self.fits(dim, None)
        if bits is None:
            return False
        wanted = bits in plan.bits if self.follows == "binary" else bits // 8 in plan.pq_bytes
        return wanted and self.fits(dim, bits)

    def requirement(
        self, n_docs: int, dim: int, bits: int | None, settings: Settings
    ) -> str | None:
        """Why the method cannot be built on this corpus (too few vectors for its training, say),
        or None. Asked before ``build``, so a library is never handed what it cannot take: the
        partition skips the method and records this reason instead of failing."""
        return None

    def code_bits(self, dim: int, bits: int | None) -> int:
        raise NotImplementedError

    def memory(self, dim: int, bits: int | None) -> Memory:
        raise NotImplementedError

    def build(self, corpus: np.ndarray, bits: int | None, settings: Settings) -> Built:
        raise NotImplementedError

    def search(
        self, built: Built, queries: np.ndarray, k: int, bits: int | None, settings: Settings
    ) -> np.ndarray:
        raise NotImplementedError

    def diagnostics(
        self, built: Built, queries: np.ndarray, truth_ids: np.ndarray, settings: Settings
    ) -> dict[str, float]:
        """Method-specific numbers for the asset's metadata (not table columns)."""
        return {}

    # ---- a stored method's index asset: its own metadata and checks ------------------------
    def index_metadata(self, built: Built, bits: int | None, settings: Settings) -> dict:
        """What the index asset records beyond sizes, timings and training (plain values)."""
        return {}

    def check_index(
        self, built: Built, corpus: np.ndarray, bits: int | None, settings: Settings
    ) -> dict:
        """Outcomes (``sanity.Outcome``) of ``stored.index_checks``, by check name."""
        return {}

    def check_row(self, row: dict, refs: Any, settings: Settings) -> dict:
        """Outcomes of ``stored.row_checks`` on the method's scored row, by check name."""
        return {}


METHODS: dict[str, Method] = {}
# The families the report's legends group methods by, in legend order.
FAMILIES = {
    "binary": "binary codes",
    "pq": "PQ family",
    "scalar": "scalar quantisation",
    "reduced": "fewer float dimensions",
    "reference": "reference",
}


def register(cls: type[Method]) -> type[Method]:
    if cls.name in METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    if cls.family not in FAMILIES:
        raise ValueError(
            f"method {cls.name!r}: family {cls.family!r} is not one of {sorted(FAMILIES)}"
        )
    METHODS[cls.name] = cls()
    return cls


def storable() -> list[str]:
    """The methods whose index can be a study asset of its own (``methods.store``)."""
    return [name for name, m in METHODS.items() if m.stored is not None]


def methods_for(budget: str) -> list[Method]:
    return [m for m in METHODS.values() if m.budget == budget]
