"""The builder's form: name, kind, description and the definition (JSON written by the builder's script)."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from personalization.models import SegmentKind


class RuleSegmentForm(forms.Form):
    name = forms.CharField(max_length=120, label="Segment name")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description")
    kind = forms.ChoiceField(
        choices=SegmentKind.choices,
        initial=SegmentKind.DYNAMIC,
        widget=forms.RadioSelect,
        label="Keep members",
        help_text="Dynamic segments refresh after each scoring run and every hour; a static snapshot keeps "
        "today's members.",
    )
    definition = forms.CharField(
        label="Conditions as JSON",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="Written by the builder above; you can also edit it here.",
    )

    def clean_definition(self) -> Any:
        raw = self.cleaned_data["definition"]
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"The conditions are not valid JSON: {exc}.") from exc
