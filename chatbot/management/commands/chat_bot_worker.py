"""The bot's reply worker for production (CX_BOT_REPLIES=worker): reads visitor messages waiting for the bot
from the Redis stream in batches and answers them (one embedding call per batch). Run one or more."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chatbot.replies import bot_model_load, stats, worker_run


class Command(BaseCommand):
    help = "Answer visitor messages waiting for the bot, in batches, from the Redis stream (CX_BOT_REPLIES=worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--consumer", default=None, help="consumer name in the stream group (default host-pid)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not getattr(settings, "REDIS_URL", ""):
            raise CommandError("chat_bot_worker needs Redis (REDIS_URL).")
        embeddings = bot_model_load()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())  # finish the batch in hand, then stop
        self.stdout.write(f"bot worker: embeddings {'on' if embeddings else 'off'}")
        worker_run(consumer=options["consumer"], stop=stop)
        batches = max(1, stats["batches"])
        self.stdout.write(
            f"bot worker stopped: {stats['written']} messages written in {stats['batches']} batches "
            f"({stats['conversations'] / batches:.1f} conversations a batch)"
        )
