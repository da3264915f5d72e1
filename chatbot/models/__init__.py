"""Chat tables. Knowledge base and bot settings live in `knowledge.py`; conversations, messages and
widget look in `conversations.py`. Each module lists its models in `__all__`."""

from chatbot.models.conversations import *  # noqa: F403
from chatbot.models.knowledge import *  # noqa: F403
