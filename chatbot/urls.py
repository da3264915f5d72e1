from django.urls import path

from chatbot import views

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
]
