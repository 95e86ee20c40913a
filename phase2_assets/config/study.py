"""The study configuration: the one file a researcher edits.

Everything that varies between studies (datasets, models, bit lengths, PQ sizes, seeds, tiers,
thresholds) lives in a YAML file validated here. Partitions are derived from it, so adding a
dataset or a model is a config change, never a code change. Validation is strict (unknown keys
are errors) because a silently ignored typo in a study config means a silently different study.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from phase2_assets.compute.methods.base import Settings as MethodSettings

STUDIES_DIR = Path(__file__).parent / "studies"
PAIR_SEPARATOR = "__"
# Matched with fullmatch: "$" alone also matches before a trailing newline.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
# A tier names a sensor too, and Dagster's names allow letters, digits and "_" only ("-" is
# replaced by "_").
TIER_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
SPLIT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_BITS = 4096
# The keys that become the methods' ``Settings`` (``defs/steps/settings.py``) take their defaults
# from there, so each is written once: a method built in a test or a bench without a study sees
# what a study that leaves the key out gives it.
METHOD_DEFAULTS = MethodSettings()


class StudyConfigError(ValueError):
    """A study config that cannot be used; the message names the file and the offending key."""


def _bit_lengths(field: str, bits: list[int]) -> list[int]:
    """Sorted, de-duplicated bit lengths, each a whole number of bytes within MAX_BITS."""
    for b in bits:
        if b % 8 != 0 or not 8 <= b <= MAX_BITS:
            raise ValueError(f"{field} {b} must be a multiple of 8 between 8 and {MAX_BITS}")
    return sorted(set(bits))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(kind: str, name: str) -> str:
    if not NAME_PATTERN.fullmatch(name) or ".." in name or PAIR_SEPARATOR in name:
        raise ValueError(
            f"{kind} name {name!r} must be lower-case letters, digits, '.', '_' or '-', "
            f"must not contain '..' or '{PAIR_SEPARATOR}' (it becomes a partition key and a path)"
        )
    return name


def _check_label(key: str, name, why: str) -> str:
    """A name that only labels (a study, an adapter): the names' pattern, so that no markup or
    line break reaches the Markdown memo and the tables' Markdown metadata."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{key} {name!r} must be lower-case letters, digits, '.', '_' or '-', starting with "
            f"a letter or digit ({why})"
        )
    return name


class DatasetConfig(_Strict):
    """A BEIR-format collection: a local folder, a folder under PHASE2_BEIR_DIR, or a download."""

    beir_name: str | None = Field(
        None, description="Folder name under PHASE2_BEIR_DIR and name of the BEIR download zip."
    )
    path: str | None = Field(None, description="Explicit local folder in BEIR layout.")
    url: str | None = Field(None, description="Download URL of a BEIR-layout zip.")
    checksum: str | None = Field(
        None,
        pattern=r"^(md5:[0-9a-f]{32}|sha256:[0-9a-f]{64})$",
        description="md5:<hex> or sha256:<hex> of the download zip; a mismatch discards it.",
    )
    split: str = Field("test", description="qrels/<split>.tsv: a plain file name, no path.")
    sample_size: int | None = Field(
        None, ge=1, description="Corpus size after seeded subsampling; judged docs are always kept."
    )


class ModelConfig(_Strict):
    """A sentence-transformers encoder and the prompts it was trained with, or a folder of
    vectors someone already computed (``vectors``: a hosted API, an in-house encoder)."""

    name: str | None = Field(
        None,
        description="Hub name, e.g. sentence-transformers/all-MiniLM-L6-v2 (required unless "
        "`vectors` is set; then a label for the encoder that made them).",
    )
    vectors: str | None = Field(
        None,
        description="Folder of precomputed vectors instead of an encoder: <folder>/<dataset>/ "
        "holds corpus.npy + corpus_ids.txt and queries.npy + query_ids.txt, or corpus.parquet "
        "and queries.parquet (columns id, vector).",
    )
    normalize: bool = Field(
        False,
        description="Precomputed vectors only: L2-normalise rows that are not unit-norm instead "
        "of rejecting them (recorded in the embeddings' metadata).",
    )
    path: str | None = Field(None, description="Local folder that overrides the hub name.")
    dim: int = Field(ge=1, description="Embedding dimension; checked against the model.")
    query_prompt: str = ""
    passage_prompt: str = ""
    max_seq_length: int | None = Field(None, ge=1)
    batch_size: int = Field(64, ge=1, description="Texts per forward pass on CPU.")
    gpu_batch_size: int | None = Field(
        None, ge=1, description="Texts per forward pass on a GPU; unset = tuned on the device."
    )
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto",
        description="auto = fp16 on CUDA, fp32 on CPU. bf16 = torch autocast, ~2x faster on a "
        "CPU with AMX or AVX-512 BF16; its vectors move the last digits of the metrics.",
    )
    backend: Literal["auto", "torch", "onnx", "openvino"] = Field(
        "auto",
        description="sentence-transformers backend; auto = torch. "
        "onnx and openvino need sentence-transformers' extras of the same names and run fp32.",
    )
    trust_remote_code: bool = Field(
        False,
        description="Run Python code shipped with the model; also needs PHASE2_TRUST_REMOTE_CODE.",
    )

    @model_validator(mode="after")
    def _encoder_or_vectors(self) -> ModelConfig:
        if self.vectors is None:
            if not self.name:
                raise ValueError("a model needs `name` (an encoder) or `vectors` (a folder)")
            if self.normalize:
                raise ValueError("`normalize` applies to precomputed `vectors` only")
            return self
        encoder_only = {
            "path": self.path,
            "query_prompt": self.query_prompt,
            "passage_prompt": self.passage_prompt,
            "max_seq_length": self.max_seq_length,
            "gpu_batch_size": self.gpu_batch_size,
            "trust_remote_code": self.trust_remote_code,
        }
        given = sorted(key for key, value in encoder_only.items() if value)
        if given:
            raise ValueError(
                f"{', '.join(given)} configure an encoder; this model reads precomputed "
                f"`vectors`, so they would have no effect (remove them)"
            )
        return self

    @property
    def precomputed(self) -> bool:
        return self.vectors is not None

    @property
    def label(self) -> str:
        """What made the vectors, for the UI: the encoder's name, else the vector folder."""
        return self.name or f"precomputed vectors ({self.vectors})"


class TierConfig(_Strict):
    datasets: list[str] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    bits: list[int] = Field(min_length=1)
    pq_bytes: list[int] = Field(min_length=1)

    @field_validator("bits")
    @classmethod
    def _bits_valid(cls, bits: list[int]) -> list[int]:
        return _bit_lengths("bits", bits)

    @field_validator("pq_bytes")
    @classmethod
    def _pq_valid(cls, sizes: list[int]) -> list[int]:
        for m in sizes:
            if not 1 <= m <= MAX_BITS // 8:
                raise ValueError(f"pq_bytes {m} must be between 1 and {MAX_BITS // 8}")
        return sorted(set(sizes))


class Seeds(_Strict):
    corpus_sample: int = 13
    projection: int = METHOD_DEFAULTS.projection_seed
    pq_train: int = METHOD_DEFAULTS.pq_seed
    checks: int = METHOD_DEFAULTS.checks_seed


class PQConfig(_Strict):
    nbits: Literal[8] = METHOD_DEFAULTS.pq_nbits
    train_size: int = Field(
        METHOD_DEFAULTS.pq_train_size,
        ge=256,
        description="Seeded training sample; faiss wants >= 39 x 256 points.",
    )


class RetrievalConfig(_Strict):
    ground_truth_k: int = Field(100, ge=10)
    query_block: int = Field(METHOD_DEFAULTS.query_block, ge=1)
    corpus_block: int = Field(METHOD_DEFAULTS.corpus_block, ge=1)
    encode_chunk: int = Field(4096, ge=1)


class MethodsConfig(_Strict):
    """Which methods beyond the plan run, and each method's own section (``methods.opq:
    {tolerance: 0.01}``), validated by the schema the method declares (its ``Params``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    extra: list[str] | None = Field(
        None,
        description="Which methods beyond the plan to run (names from the registry); "
        "unset runs them all, [] runs only the planned float32/int8/binary/PQ rows.",
    )
    store: list[str] = Field(
        default_factory=lambda: ["binary", "pq", "int8"],
        description="Methods whose index is a study asset of its own (kept on disk, checked, "
        "shown in the lineage) with its own metrics asset; the others are built where they are "
        "scored. The instrument is always stored: E7 and X3 read its codes.",
    )

    @model_validator(mode="after")
    def _sections_valid(self) -> MethodsConfig:
        from phase2_assets.compute.methods import METHODS, storable

        for name in self.store:
            if name not in storable():
                raise ValueError(
                    f"methods.store: {name!r} cannot be stored (storable: {', '.join(storable())})"
                )
        if "binary" not in self.store:
            raise ValueError("methods.store must list 'binary': E7 and X3 read the instrument")
        for name, section in (self.model_extra or {}).items():
            method = METHODS.get(name)
            if method is None:
                raise ValueError(
                    f"methods.{name}: not a registered method (registered: {', '.join(METHODS)})"
                )
            try:
                method.Params.model_validate(section or {})
            except ValidationError as exc:
                problems = "; ".join(
                    f"methods.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ValueError(problems) from None
        return self

    def params(self) -> dict[str, dict]:
        """Each configured method's section, by method name."""
        return {name: dict(section or {}) for name, section in (self.model_extra or {}).items()}


class CheckThresholds(_Strict):
    norm_tolerance: float = 1e-3
    bit_balance_max_deviation: float = 0.45
    hamming_angle_max_error: float = 0.03
    pq_float_ndcg_slack: float = 0.02
    int8_min_recall_at_10: float = Field(0.95, ge=0, le=1)
    ground_truth_sample_queries: int = Field(200, ge=1)
    sample_size: int = 2000


class KillSwitches(_Strict):
    f1_recall_at_10_512_below: float = 0.55
    f2_binary_over_pq_below: float = 0.5
    f3_abs_rho_below: float = 0.3
    f3_r2_below: float = 0.1
    k1_min_tier1_completion: float = 0.8
    k1_week: int = 10
    k2_min_gain_pp: float = 1.0
    k3_r2_below: float = 0.05
    k3_abs_rho_below: float = 0.2


class BFIConfig(_Strict):
    """The Binary Friendliness Index formula (docs/plan.md#x1, compute/analysis/bfi.py)."""

    recall_bits: list[int] = [256, 512]
    w_recall: float = Field(0.5, ge=0)
    w_ratio: float = Field(0.5, ge=0)
    anisotropy_penalty: float = Field(0.0, ge=0)
    anisotropy_reference: float = Field(10.0, gt=0)


class AnalysisConfig(_Strict):
    """Geometry sampling and the geometry -> quality regressions (E7, E8, X2)."""

    pair_sample: int = Field(20000, ge=10)
    features: list[str] = [
        "anisotropy_centred",
        "outlier_fraction",
        "intrinsic_dim_90",
        "mean_pairwise_cosine",
        "angular_spread_deg",
        "log2_bits",
    ]
    n_bootstrap: int = Field(1000, ge=10)
    min_points: int = Field(5, ge=3)


class VerdictConfig(_Strict):
    """GREEN/YELLOW/RED thresholds from the plan's summary section."""

    green_recall_at_10: float = 0.70
    green_ratio_vs_pq: float = 0.80
    green_bits: list[int] = [256, 512]
    tier2_mostly_done: float = 0.5
    green_adapter_gain_pp: float = Field(
        5.0, description="GREEN also needs X3's best gain at 256 bits to reach this many points."
    )


class BandsConfig(_Strict):
    """The plan's target bands of E1–E8 and X1–X4 (each experiment's "Target bands"), judged by
    compute/analysis/bands.py: the plan's numbers as defaults. E8/X2's Negative is F3's rule
    (``kill_switches.f3_*``); a band's rule in words is in the bands asset and the report."""

    e1_hope_gpu_hours: float = Field(20.0, gt=0)
    e1_negative_gpu_hours: float = Field(35.0, gt=0, description="the plan's 'exceeds 35-40'")
    e1_max_rerun_share: float = Field(
        0.25, ge=0, description="'no major re-runs': GPU time spent on reruns, over the results'"
    )
    e3_hope_bytes: list[int] = [32, 64]
    e3_hope_fraction_of_float: float = Field(0.8, ge=0, le=1)
    e3_hope_dataset_share: float = Field(2 / 3, ge=0, le=1)
    e3_negative_recall_at_64_bytes: float = Field(0.6, ge=0, le=1)
    e4_hope_cpu_hours: float = Field(50.0, gt=0)
    e5_hope_bits: list[int] = [256, 512]
    e5_hope_recall: float = Field(0.70, ge=0, le=1)
    e5_hope_dataset_share: float = Field(2 / 3, ge=0, le=1)
    e5_hope_model_share: float = Field(2 / 3, ge=0, le=1)
    e5_hope_ratio_vs_pq: float = Field(0.80, ge=0)
    e6_hope_recall: float = Field(0.80, ge=0, le=1)
    e6_negative_recall_at_64_bytes: float = Field(0.70, ge=0, le=1)
    e7_high_anisotropy: float = Field(10.0, gt=0, description="sigma_1 / sigma_median, centred")
    e7_outlier_fraction: float = Field(0.01, ge=0, le=1)
    e7_alignment_rho: float = Field(0.3, ge=0, le=1)
    e7_min_variation: float = Field(0.05, ge=0, description="range over mean across pairs")
    e8_hope_r2: float = 0.3
    e8_hope_rho: float = 0.5
    x1_hope_spread: float = Field(0.3, ge=0)
    x1_hope_rank_rho: float = Field(0.9, ge=-1, le=1, description="'almost identical' ranking")
    x1_negative_spread: float = Field(0.05, ge=0)
    x3_hope_gain_pp: float = 5.0
    x3_hope_gap_closed: float = Field(0.2, description="the plan's '>= 20-30%' at its low end")
    x3_negative_gain_pp: float = 2.0
    x3_negative_gap_closed: float = 0.1
    full_scale_passages: int = Field(
        100_000,
        ge=1,
        description="A claim judged only on collections smaller than this says so: the plan's "
        "thresholds are written for ~500K passages.",
    )


class LadderConfig(_Strict):
    """The corpus-size ladder (compute/analysis/corpus_ladder.py): the chosen methods at fixed
    bits on nested seeded subsets of every corpus, so the reader sees how recall moves with the
    number of passages. Sizes at or above a corpus's size are left out; its full size is the top
    rung."""

    sizes: list[int] = Field(
        default_factory=lambda: [1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000],
        description="Passages per rung below the whole corpus (every judged passage is kept).",
    )
    methods: list[str] = Field(
        default_factory=lambda: ["binary", "pq"],
        description="Bit-budget methods (registry names) run on every rung.",
    )
    bits: list[int] = Field(default_factory=lambda: [256], description="Their bit lengths.")

    @field_validator("sizes")
    @classmethod
    def _sizes_positive(cls, sizes: list[int]) -> list[int]:
        if any(s < 1 for s in sizes):
            raise ValueError(f"ladder.sizes must be positive passage counts, got {sizes}")
        return sizes

    @field_validator("bits")
    @classmethod
    def _ladder_bits_valid(cls, bits: list[int]) -> list[int]:
        return _bit_lengths("ladder.bits", bits)

    @field_validator("methods")
    @classmethod
    def _ladder_methods_known(cls, methods: list[str]) -> list[str]:
        from phase2_assets.compute.methods import METHODS

        for name in methods:
            method = METHODS.get(name)
            if method is None or method.budget != "bits":
                known = ", ".join(n for n, m in METHODS.items() if m.budget == "bits")
                raise ValueError(f"ladder.methods: {name!r} is not a bit-budget method ({known})")
        return methods


class ExploratoryConfig(_Strict):
    """X3, the light adapter: where it runs, at which bit lengths, and its (at most 3) configs."""

    adapter_pairs: list[str] | None = Field(
        None,
        description="(dataset, model) pairs 'dataset__model' the adapter trains on; unset: the "
        "first pair of the core tier. The first listed is where K2 is judged.",
    )
    adapter_bits: list[int] = [128, 256]
    geometry_sample: int = Field(
        4000, ge=10, description="Corpus rows on which the pre-sign geometry is measured."
    )
    geometry_pairs: int = Field(
        2000, ge=10, description="Random pairs of those rows for the angles and Hamming distances."
    )
    adapters: list[dict] = Field(
        default_factory=lambda: [{"name": "affine_tanh_pearson"}],
        min_length=1,
        max_length=3,
        description="Fields of compute.analysis.adapter.AdapterConfig, tried in order (the "
        "plan allows 3); each needs a unique name. K2 may stop all but the first.",
    )

    @field_validator("adapter_bits")
    @classmethod
    def _adapter_bits_valid(cls, bits: list[int]) -> list[int]:
        return _bit_lengths("adapter_bits", bits)

    @field_validator("adapters")
    @classmethod
    def _names_unique(cls, adapters: list[dict]) -> list[dict]:
        names = [a.get("name") for a in adapters]
        if None in names or len(set(names)) != len(names):
            raise ValueError(f"every adapter needs a unique 'name', got {names}")
        for i, name in enumerate(names):
            _check_label(f"adapters[{i}].name", name, "it is written into the memo and the tables")
        return adapters


class BudgetConfig(_Strict):
    """The plan's GPU budgets (A100-hours), checked by the budget ledger."""

    e1_gpu_hours: float = Field(25.0, gt=0)
    x3_gpu_hours: float = Field(5.0, gt=0)
    phase2_gpu_hours: float = Field(65.0, gt=0)


class Study(_Strict):
    name: str = Field(
        description="The study's name: lower-case letters, digits, '.', '_' or '-' (it titles "
        "the memo and the report)."
    )
    description: str = ""
    start_date: dt.date | None = None
    datasets: dict[str, DatasetConfig]
    models: dict[str, ModelConfig]
    tiers: dict[str, TierConfig]
    seeds: Seeds = Seeds()
    pq: PQConfig = PQConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    methods: MethodsConfig = MethodsConfig()
    checks: CheckThresholds = CheckThresholds()
    kill_switches: KillSwitches = KillSwitches()
    bfi: BFIConfig = BFIConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    verdict: VerdictConfig = VerdictConfig()
    bands: BandsConfig = BandsConfig()
    ladder: LadderConfig = LadderConfig()
    exploratory: ExploratoryConfig = ExploratoryConfig()
    budget: BudgetConfig = BudgetConfig()

    @field_validator("name")
    @classmethod
    def _study_name(cls, name: str) -> str:
        return _check_label("study name", name, "it titles the memo and the report")

    @model_validator(mode="after")
    def _cross_checks(self) -> Study:
        if not self.datasets or not self.models:
            raise ValueError("at least one dataset and one model are required")
        for name in self.datasets:
            _check_name("dataset", name)
        for name in self.models:
            _check_name("model", name)
        if not self.tiers:
            raise ValueError("at least one tier is required")
        for tier_name in self.tiers:
            if not TIER_PATTERN.fullmatch(tier_name):
                raise ValueError(
                    f"tier name {tier_name!r} must be lower-case letters, digits, '_' or '-' "
                    "(it names the tier's sensor)"
                )
        for name, dataset in self.datasets.items():
            if not SPLIT_PATTERN.fullmatch(dataset.split) or ".." in dataset.split:
                raise ValueError(
                    f"dataset {name!r}: split {dataset.split!r} must be a plain name (letters, "
                    "digits, '.', '_', '-'; no path): it is read as qrels/<split>.tsv"
                )
        for tier_name, tier in self.tiers.items():
            for d in tier.datasets:
                if d not in self.datasets:
                    raise ValueError(
                        f"tier {tier_name!r}: unknown dataset {d!r} "
                        f"(known: {', '.join(sorted(self.datasets))})"
                    )
            for m in tier.models:
                if m not in self.models:
                    raise ValueError(
                        f"tier {tier_name!r}: unknown model {m!r} "
                        f"(known: {', '.join(sorted(self.models))})"
                    )
                dim = self.models[m].dim
                for size in tier.pq_bytes:
                    if dim % size != 0:
                        raise ValueError(
                            f"tier {tier_name!r}: pq_bytes {size} does not divide the "
                            f"{dim}-d embeddings of model {m!r}"
                        )
        unknown = sorted(set(self.exploratory.adapter_pairs or ()) - set(self.pairs()))
        if unknown:
            raise ValueError(
                f"exploratory.adapter_pairs: {unknown} are not (dataset, model) pairs of any "
                f"tier (known: {', '.join(self.pairs())})"
            )
        return self

    # ---- derived views: partitions and per-partition plans -------------------------------
    def pairs(self) -> list[str]:
        """Every (dataset, model) pair named by some tier, as partition keys 'dataset__model'."""
        keys = {pair_key(d, m) for t in self.tiers.values() for d in t.datasets for m in t.models}
        return sorted(keys)

    def dataset_names(self) -> list[str]:
        return sorted({split_pair(p)[0] for p in self.pairs()})

    def all_bits(self) -> list[int]:
        return sorted(
            {b for t in self.tiers.values() for b in t.bits}
            | {8 * m for t in self.tiers.values() for m in t.pq_bytes}
        )

    def plan(self, pair: str) -> tuple[set[int], set[int]]:
        """(binary bit lengths, PQ byte sizes) that the tiers ask for on this pair."""
        dataset, model = split_pair(pair)
        bits: set[int] = set()
        pq: set[int] = set()
        for t in self.tiers.values():
            if dataset in t.datasets and model in t.models:
                bits.update(t.bits)
                pq.update(t.pq_bytes)
        return bits, pq

    def adapter_pairs(self) -> list[str]:
        """Where X3 runs: the configured pairs, or the core tier's first pair."""
        if self.exploratory.adapter_pairs:
            return list(self.exploratory.adapter_pairs)
        tier = self.tiers[self.core_tier]
        return [pair_key(tier.datasets[0], tier.models[0])]

    @property
    def core_tier(self) -> str:
        """The first tier listed is the core (the plan's Tier-1); later tiers are expansion."""
        return next(iter(self.tiers))

    def is_expansion_pair(self, pair: str) -> bool:
        return self.core_tier not in self.tier_of_pair(pair)

    def tier_of_pair(self, pair: str) -> list[str]:
        dataset, model = split_pair(pair)
        return [
            name for name, t in self.tiers.items() if dataset in t.datasets and model in t.models
        ]

    def pair_to_dataset(self) -> dict[str, str]:
        return {p: split_pair(p)[0] for p in self.pairs()}

    def config_hash(self) -> str:
        """Hash of the validated config (not the file's bytes): comments do not change it."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def pair_key(dataset: str, model: str) -> str:
    return f"{dataset}{PAIR_SEPARATOR}{model}"


def split_pair(pair: str) -> tuple[str, str]:
    dataset, sep, model = pair.partition(PAIR_SEPARATOR)
    if not sep or not dataset or not model:
        raise ValueError(
            f"partition key {pair!r} is not of the form 'dataset{PAIR_SEPARATOR}model'"
        )
    return dataset, model


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error naming its
    line: plain YAML keeps the last one silently, so an edit could be undone by a stale line."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def resolve_study_path(name_or_path: str) -> Path:
    """A bundled study name ('demo', 'study') or a path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.is_file() or candidate.suffix in {".yaml", ".yml"}:
        return candidate
    bundled = STUDIES_DIR / f"{name_or_path}.yaml"
    if bundled.exists():
        return bundled
    known = ", ".join(sorted(p.stem for p in STUDIES_DIR.glob("*.yaml")))
    raise StudyConfigError(f"no study config {name_or_path!r}: not a file, not one of: {known}")


def load_study(name_or_path: str | os.PathLike | None = None) -> Study:
    """Load and validate a study; default is $PHASE2_STUDY or the bundled full plan."""
    name_or_path = str(name_or_path or os.environ.get("PHASE2_STUDY") or "study")
    path = resolve_study_path(name_or_path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506
    except FileNotFoundError as exc:
        raise StudyConfigError(f"{path}: file not found") from exc
    except yaml.YAMLError as exc:
        raise StudyConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise StudyConfigError(f"{path}: expected a mapping at the top level")
    try:
        return Study.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise StudyConfigError(f"{path}: {problems}") from exc
