from django.urls import path

from journeys import views

urlpatterns = [
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("products/", views.product_list, name="product_list"),
    path("imports/", views.imports_page, name="imports"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("exports/", views.export_start_view, name="export_start"),
]
