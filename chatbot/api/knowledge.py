"""Knowledge-base API: FAQ entries and articles (CRUD; every change rebuilds the bot's index in the
background), and the index status / a manual rebuild. Scoping and permissions come from TenantScopedViewSet."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from chatbot import knowledge
from chatbot.knowledge import KnowledgeError
from chatbot.models import Article, FaqEntry
from tenants.api.base import TenantScopedViewSet
from tenants.models import User


class FaqEntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    phrasings = serializers.ListField(
        child=serializers.CharField(max_length=knowledge.PHRASING_MAX), required=False, default=list
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    index_id = serializers.CharField(read_only=True, help_text="The id bot decisions use for this entry.")

    class Meta:
        model = FaqEntry
        fields = ["id", "index_id", "question", "phrasings", "answer", "tags", "active", "created", "updated"]
        read_only_fields = ["id", "index_id", "created", "updated"]


class ArticleSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    index_id = serializers.CharField(read_only=True)

    class Meta:
        model = Article
        fields = ["id", "index_id", "title", "body", "tags", "active", "created", "updated"]
        read_only_fields = ["id", "index_id", "created", "updated"]


class _KnowledgeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    read_permission = "dashboard.view"
    write_permission = "data.write"
    ordering_fields = ["id", "updated"]
    ordering = ["id"]

    def _user(self) -> User | None:
        user = self.request.user
        return user if isinstance(user, User) else None

    def _run(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(created_by=self._user(), **kwargs)
        except KnowledgeError as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from exc

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = self._create(serializer.validated_data)
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        obj = self.get_object()
        serializer = self.get_serializer(obj, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        obj = self._update(obj, serializer.validated_data)
        return Response(self.get_serializer(obj).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        kwargs["partial"] = True
        return self.update(request, *args, **kwargs)

    def _create(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _update(self, obj: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError


class FaqEntryViewSet(_KnowledgeViewSet):
    """FAQ entries. `?q=` searches question, answer and phrasings; `?active=true|false` filters."""

    model = FaqEntry
    serializer_class = FaqEntrySerializer

    def scoped_queryset(self) -> Any:
        queryset = FaqEntry.objects.all()
        query = self.request.query_params.get("q", "").strip() if hasattr(self, "request") else ""
        if query:
            queryset = knowledge.knowledge_search(query=query, kind="faq")[0]
        active = self.request.query_params.get("active") if hasattr(self, "request") else None
        if active in ("true", "false"):
            queryset = queryset.filter(active=active == "true")
        return queryset

    def _create(self, data: dict[str, Any]) -> FaqEntry:
        return self._run(knowledge.faq_entry_create, **data)  # type: ignore[no-any-return]

    def _update(self, obj: FaqEntry, data: dict[str, Any]) -> FaqEntry:
        return self._run(knowledge.faq_entry_update, entry=obj, **data)  # type: ignore[no-any-return]

    def perform_destroy(self, instance: FaqEntry) -> None:
        knowledge.faq_entry_delete(entry=instance, created_by=self._user())


class ArticleViewSet(_KnowledgeViewSet):
    """Longer help articles; the bot quotes their opening paragraphs."""

    model = Article
    serializer_class = ArticleSerializer

    def _create(self, data: dict[str, Any]) -> Article:
        return self._run(knowledge.article_create, **data)  # type: ignore[no-any-return]

    def _update(self, obj: Article, data: dict[str, Any]) -> Article:
        return self._run(knowledge.article_update, article=obj, **data)  # type: ignore[no-any-return]

    def perform_destroy(self, instance: Article) -> None:
        knowledge.article_delete(article=instance, created_by=self._user())


_STATUS = inline_serializer(
    "KnowledgeIndexStatus",
    {
        "engine": inline_serializer(
            "KnowledgeEngine",
            {
                "mode": serializers.ChoiceField(choices=["semantic", "lexical"]),
                "model": serializers.CharField(allow_null=True),
                "label": serializers.CharField(allow_null=True, help_text="The model as the dashboard names it."),
                "variant": serializers.ChoiceField(
                    choices=["int8", "float"],
                    allow_null=True,
                    help_text="How the embedding model runs here (CX_BOT_MODEL_QUANTIZE); null when lexical.",
                ),
                "runtime": serializers.ChoiceField(
                    choices=["onnx", "torch"],
                    allow_null=True,
                    help_text="What computes the model here: ONNX Runtime or torch (CX_BOT_MODEL_RUNTIME); null when "
                    "lexical.",
                ),
                "reason": serializers.CharField(),
            },
        ),
        "revision": serializers.IntegerField(),
        "up_to_date": serializers.BooleanField(),
        "active": serializers.DictField(allow_null=True),
        "rebuilding": serializers.DictField(allow_null=True),
        "last_failure": serializers.DictField(allow_null=True),
    },
)


class KnowledgeIndexViewSet(TenantScopedViewSet):
    """The bot's knowledge index: status (engine, active version, rebuild in progress) and manual rebuild."""

    model = FaqEntry
    read_permission = "dashboard.view"
    write_permission = "data.write"
    pagination_class = None

    @extend_schema(responses={200: _STATUS})
    @action(detail=False, methods=["get"], url_path="status")
    def status(self, request: Request) -> Response:
        return Response(knowledge.index_rebuild_status())

    @extend_schema(request=None, responses={202: _STATUS})
    @action(detail=False, methods=["post"], url_path="rebuild")
    def rebuild(self, request: Request) -> Response:
        user = request.user if isinstance(request.user, User) else None
        knowledge.index_rebuild_request(created_by=user)
        return Response(knowledge.index_rebuild_status(), status=status.HTTP_202_ACCEPTED)


router = SimpleRouter()
router.register("knowledge/entries", FaqEntryViewSet, basename="faq-entry")
router.register("knowledge/articles", ArticleViewSet, basename="kb-article")
router.register("knowledge/index", KnowledgeIndexViewSet, basename="knowledge-index")

urlpatterns = router.urls
