"""A real Celery worker emails an agent's reply to the address the visitor left, and when the mail backend
refuses, keeps the reply unmarked and tries again with backoff until it goes out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatbot.models import Conversation, Message
from chatbot.services import agent_message_post
from tenants.context import tenant_context
from tenants.models import Tenant, User
from tests.celery_worker import celery_worker, needs_worker
from tests.chatbot.conftest import Widget

pytestmark = needs_worker


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    """Where the worker's file mail backend writes. A plain file stands there first, so the backend refuses
    ("exists, but is not a directory") until the test removes it: a mail server that is down, then back."""
    path = tmp_path / "mail"
    path.write_text("not a directory")
    return path


@pytest.fixture
def worker(transactional_db: None, tmp_path: Path, mail_dir: Path, settings: Any) -> Iterator[Path]:
    settings.CX_TASKS_INLINE = False
    env = {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "CX_REPLY_EMAIL_RETRY_SECONDS": "1",
    }
    with celery_worker(tmp_path, queue="default", env=env):
        yield tmp_path / "worker.log"


def _wait_for(condition: Any, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_refused_reply_email_is_retried_until_it_is_sent(
    worker: Path, mail_dir: Path, widget: Widget, tenant: Tenant, agent: User
) -> None:
    widget.say("I want to talk to a person")
    with tenant_context(tenant):
        conversation = Conversation.objects.get()
        Conversation.objects.filter(pk=conversation.pk).update(contact_email="sam@example.com", reply_by_email=True)
        reply = agent_message_post(conversation=conversation, author=agent, text="Your beans ship Monday.")

    _wait_for(lambda: "trying again in 1 s" in worker.read_text(), "the first refusal")
    with tenant_context(tenant):
        assert Message.objects.get(pk=reply.pk).emailed_at is None  # refused: not marked
    mail_dir.unlink()  # the mail server is back

    def emailed() -> bool:
        with tenant_context(tenant):
            return Message.objects.get(pk=reply.pk).emailed_at is not None

    _wait_for(emailed, "the retried email")
    [sent] = list(mail_dir.iterdir())
    text = sent.read_text()
    assert "To: sam@example.com" in text and "Your beans ship Monday." in text and f"Reply-To: {agent.email}" in text
