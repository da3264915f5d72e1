"""Celery tasks of the chat: thin wrappers that set the tenant and call a service."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings

from chatbot.models import Message
from chatbot.services import reply_email_send
from tenants.context import all_tenants, tenant_context

logger = logging.getLogger(__name__)

# A mail server that refuses for a while (greylisting, an outage) is tried again after 1, 2, 4 ... 64 minutes
# (CX_REPLY_EMAIL_RETRY_SECONDS doubled per retry).
REPLY_EMAIL_RETRIES = 7


@shared_task(
    bind=True,
    name="chatbot.tasks.reply_email_task",
    queue="default",
    acks_late=True,
    ignore_result=True,
    max_retries=REPLY_EMAIL_RETRIES,
)
def reply_email_task(self: Any, tenant_id: int, message_id: int) -> bool:
    """Email an agent's reply to the visitor's address; a refusal is logged and tried again with backoff
    (on a worker; where the task runs eagerly, once). The message stays unmarked until a send succeeds."""
    with all_tenants():
        message = (
            Message.all_tenants.select_related("tenant", "conversation", "author")
            .filter(pk=message_id, tenant_id=tenant_id)
            .first()
        )
    if message is None:
        return False
    with tenant_context(message.tenant):
        try:
            return reply_email_send(message=message)
        except Exception as exc:  # SMTP errors are many kinds of OSError and smtplib exceptions
            retries = self.request.retries or 0
            if self.request.is_eager or retries >= self.max_retries:
                logger.exception("could not email reply %s of conversation %s", message.pk, message.conversation_id)
                return False
            countdown = settings.CX_REPLY_EMAIL_RETRY_SECONDS * 2**retries
            logger.warning(
                "could not email reply %s of conversation %s (%s); trying again in %s s",
                message.pk, message.conversation_id, exc, countdown,
            )  # fmt: skip
            raise self.retry(exc=exc, countdown=countdown) from exc
