from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.http import HttpRequest

from tenants.models import CURRENCY_CHOICES, TIMEZONE_CHOICES, ApiKeyScope, Role, Tenant, User


class BusinessFieldsMixin(forms.Form):
    business_name = forms.CharField(label="Business name", max_length=120)
    timezone = forms.ChoiceField(label="Time zone", choices=TIMEZONE_CHOICES, initial="UTC")
    currency = forms.ChoiceField(label="Currency", choices=CURRENCY_CHOICES, initial="USD")


class BusinessSignupForm(BusinessFieldsMixin):
    """Extra fields of allauth's sign-up: the new user's business, which they will own."""

    name = forms.CharField(label="Your name", max_length=150, required=False)

    def signup(self, request: HttpRequest, user: User) -> None:
        from tenants.services import tenant_create

        user.name = self.cleaned_data.get("name", "")
        user.save(update_fields=["name"])
        tenant_create(
            name=self.cleaned_data["business_name"],
            owner=user,
            timezone_name=self.cleaned_data["timezone"],
            currency=self.cleaned_data["currency"],
        )


class NewBusinessForm(BusinessFieldsMixin):
    pass


class TenantSettingsForm(forms.ModelForm[Tenant]):
    class Meta:
        model = Tenant
        fields = ["name", "timezone", "currency"]
        labels = {"name": "Business name", "timezone": "Time zone"}


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.AGENT)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Key name", max_length=80, help_text="Where it will be used, e.g. “Shopify sync”.")
    scope = forms.ChoiceField(label="Access", choices=ApiKeyScope.choices, initial=ApiKeyScope.READ)


class InvitationSignupForm(forms.Form):
    """Account creation for an invited person who has no account yet."""

    name = forms.CharField(label="Your name", max_length=150)
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(
        label="Password (again)", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            try:
                validate_password(p1, User(email=self.email, name=data.get("name", "")))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data
