"""Personalization tables. The model registry, scores and RFM/cluster assignments live in
`registry.py`; rule segments in `segments.py`. Each module lists its models in `__all__`."""

from personalization.models.registry import *  # noqa: F403
from personalization.models.segments import *  # noqa: F403
