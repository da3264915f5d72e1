from __future__ import annotations

from typing import Any

from django.core.paginator import Page
from django.core.paginator import Paginator as DjangoPaginator
from rest_framework import pagination


class Paginator(DjangoPaginator):
    """Fetches the first page before counting: when it is not full, its length is the count, and the
    COUNT query (as costly as the page itself on most lists) is skipped."""

    def page(self, number: Any) -> Page:
        try:
            first = int(number) == 1
        except (TypeError, ValueError):
            first = False
        if not first or "count" in self.__dict__:
            return super().page(number)
        rows = list(self.object_list[: self.per_page])
        if len(rows) < self.per_page:
            self.__dict__["count"] = len(rows)  # what the cached property would have computed
        return Page(rows, 1, self)


class PageNumberPagination(pagination.PageNumberPagination):
    django_paginator_class = Paginator
    page_size_query_param = "page_size"
    max_page_size = 500
