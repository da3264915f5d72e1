"""The widget's endpoints under /widget/v1/ (the public key and a visitor token, no session), matched first:
every visitor message comes here, and resolving it after the dashboard's and the API's patterns cost it more
than the rest of routing."""

from django.urls import path

from chatbot import widget_views

urlpatterns = [
    path("session/", widget_views.SessionView.as_view(), name="widget_session"),
    path("messages/", widget_views.MessagesView.as_view(), name="widget_messages"),
    path("messages/after/", widget_views.MessagesAfterView.as_view(), name="widget_messages_after"),
    path("typing/", widget_views.TypingView.as_view(), name="widget_typing"),
    path("identify/", widget_views.IdentifyView.as_view(), name="widget_identify"),
    path("email/", widget_views.EmailView.as_view(), name="widget_email"),
    path("track/", widget_views.TrackView.as_view(), name="widget_track"),
    path("csat/", widget_views.CsatView.as_view(), name="widget_csat"),
]
