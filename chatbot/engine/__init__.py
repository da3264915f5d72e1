"""The chat bot's engine: pure Python (no Django). Build a `KnowledgeIndex` from FAQ entries and
articles, store it with `to_bytes()`, load it with `KnowledgeIndex.from_bytes()`, and call `decide()`."""

from .embeddings import (
    HUB_MODEL_NAME,
    BatchingEmbedder,
    Embedder,
    EngineInfo,
    FeatureEmbedder,
    SentenceTransformerEmbedder,
    available,
    engine_info,
    get_embedder,
    resolve_model_path,
)
from .index import ENGINE_REVISION, Article, FaqEntry, IndexConfig, KnowledgeIndex, Match, QueryAnalysis, build_index
from .intents import Intent, IntentRecognizer, IntentResult, recognise
from .policy import Action, Decision, Thresholds, Turn, analysis_k, decide
from .sentiment import Frustration, frustration, sentiment, similarity

__all__ = [
    "ENGINE_REVISION",
    "HUB_MODEL_NAME",
    "Action",
    "Article",
    "BatchingEmbedder",
    "Decision",
    "Embedder",
    "EngineInfo",
    "FaqEntry",
    "FeatureEmbedder",
    "Frustration",
    "IndexConfig",
    "Intent",
    "IntentRecognizer",
    "IntentResult",
    "KnowledgeIndex",
    "Match",
    "QueryAnalysis",
    "SentenceTransformerEmbedder",
    "Thresholds",
    "Turn",
    "analysis_k",
    "available",
    "build_index",
    "decide",
    "engine_info",
    "frustration",
    "get_embedder",
    "recognise",
    "resolve_model_path",
    "sentiment",
    "similarity",
]
