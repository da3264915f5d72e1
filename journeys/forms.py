from __future__ import annotations

from django import forms

from journeys.exports import EXPORTS
from journeys.imports import KINDS


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label="What the file holds", choices=[(k, k.capitalize()) for k in KINDS])
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 (with or without BOM), first line names the columns. Up to 200 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )


class ExportForm(forms.Form):
    table = forms.ChoiceField(label="Table", choices=[(t, t.capitalize()) for t in EXPORTS])


class ConsentForm(forms.Form):
    consent_personalization = forms.BooleanField(label="Personalization", required=False)
    consent_marketing = forms.BooleanField(label="Marketing", required=False)
