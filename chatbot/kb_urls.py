from django.urls import path

from chatbot import kb_views

urlpatterns = [
    path("knowledge/", kb_views.knowledge_list, name="knowledge"),
    path("knowledge/status/", kb_views.knowledge_status, name="knowledge_status"),
    path("knowledge/rebuild/", kb_views.knowledge_rebuild, name="knowledge_rebuild"),
    path("knowledge/entries/new/", kb_views.faq_entry_edit, name="knowledge_entry_new"),
    path("knowledge/entries/<int:pk>/", kb_views.faq_entry_edit, name="knowledge_entry_edit"),
    path("knowledge/entries/<int:pk>/delete/", kb_views.faq_entry_delete, name="knowledge_entry_delete"),
    path("knowledge/articles/new/", kb_views.article_edit, name="knowledge_article_new"),
    path("knowledge/articles/<int:pk>/", kb_views.article_edit, name="knowledge_article_edit"),
    path("knowledge/articles/<int:pk>/delete/", kb_views.article_delete, name="knowledge_article_delete"),
    path("knowledge/import/", kb_views.knowledge_import, name="knowledge_import"),
    path("knowledge/bot-settings/", kb_views.bot_settings, name="knowledge_bot_settings"),
    path("knowledge/unanswered/", kb_views.unanswered, name="unanswered"),
    path("knowledge/unanswered/create/", kb_views.unanswered_create, name="unanswered_create"),
    path("knowledge/unanswered/add/", kb_views.unanswered_add, name="unanswered_add"),
]
