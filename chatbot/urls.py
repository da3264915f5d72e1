from django.urls import path

from chatbot import views, widget_views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/list/", views.inbox_list, name="inbox_list"),
    path("inbox/<int:pk>/", views.inbox, name="inbox_conversation"),
    path("inbox/<int:pk>/reply/", views.inbox_reply, name="inbox_reply"),
    path("inbox/<int:pk>/assign/", views.inbox_assign, name="inbox_assign"),
    path("inbox/<int:pk>/resolve/", views.inbox_resolve, name="inbox_resolve"),
    path("inbox/<int:pk>/hand-back/", views.inbox_hand_back, name="inbox_hand_back"),
    path("inbox/availability/", views.inbox_availability, name="inbox_availability"),
    path("settings/widget/", views.widget_settings, name="widget_settings"),
    path("settings/canned-responses/", views.canned_responses, name="canned_responses"),
    path("settings/canned-responses/<int:pk>/", views.canned_response_edit, name="canned_response_edit"),
    path("demo/store/", views.demo_store, name="demo_store"),
    path("widget/v1/session/", widget_views.SessionView.as_view(), name="widget_session"),
    path("widget/v1/messages/", widget_views.MessagesView.as_view(), name="widget_messages"),
    path("widget/v1/messages/after/", widget_views.MessagesAfterView.as_view(), name="widget_messages_after"),
    path("widget/v1/typing/", widget_views.TypingView.as_view(), name="widget_typing"),
    path("widget/v1/identify/", widget_views.IdentifyView.as_view(), name="widget_identify"),
    path("widget/v1/email/", widget_views.EmailView.as_view(), name="widget_email"),
    path("widget/v1/track/", widget_views.TrackView.as_view(), name="widget_track"),
    path("widget/v1/csat/", widget_views.CsatView.as_view(), name="widget_csat"),
]
