"""Two-factor sign-in (allauth MFA): activate TOTP, then a login needs the code or a recovery code.

Every member may turn it on, whatever their role: it protects the person's account, which can hold
different roles in different businesses. Owners and admins are its main audience, nothing more.
"""

from __future__ import annotations

import time

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.test import Client

from tenants.models import User
from tests.conftest import PASSWORD


def totp_now(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // mfa_settings.TOTP_PERIOD))


def totp_wrong(secret: str) -> str:
    """A six-digit code that no counter inside allauth's tolerance window accepts."""
    counter = int(time.time()) // mfa_settings.TOTP_PERIOD
    window = range(counter - mfa_settings.TOTP_TOLERANCE - 1, counter + mfa_settings.TOTP_TOLERANCE + 2)
    valid = {format_hotp_value(hotp_value(secret, c)) for c in window}
    return next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid)


def sign_in(client: Client, user: User) -> str:
    """Post the login form; returns where it sends the browser next."""
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:2000]
    return str(response["Location"])


def activate_totp(user: User) -> tuple[str, list[str]]:
    """Sign in with the password and turn TOTP on. Returns the secret and the recovery codes."""
    client = Client()
    sign_in(client, user)
    # Turning it on asks for the password again, even right after signing in.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    assert secret in page.content.decode()  # shown for apps that cannot scan the QR code
    refused = client.post("/accounts/2fa/totp/activate/", {"code": totp_wrong(secret)})
    assert refused.status_code == 200 and "Incorrect code" in refused.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()
    done = client.post("/accounts/2fa/totp/activate/", {"code": totp_now(secret)})
    assert done.status_code == 302
    assert Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    codes = RecoveryCodes(Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES))
    return secret, codes.get_unused_codes()


def test_login_with_totp_refuses_a_wrong_code_and_accepts_the_right_one(owner: User, tenant: object) -> None:
    secret, _ = activate_totp(owner)
    client = Client()
    assert sign_in(client, owner) == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session  # the password alone does not sign in any more
    assert client.get("/").status_code == 302

    wrong = client.post("/accounts/2fa/authenticate/", {"code": totp_wrong(secret)})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert "_auth_user_id" not in client.session

    right = client.post("/accounts/2fa/authenticate/", {"code": totp_now(secret)})
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.session["_auth_user_id"] == str(owner.pk)
    assert "<h1>Tenant A Coffee</h1>" in client.get("/").content.decode()


def test_a_recovery_code_signs_in_once(owner: User, tenant: object) -> None:
    _, codes = activate_totp(owner)
    assert len(codes) == mfa_settings.RECOVERY_CODE_COUNT
    first = Client()
    sign_in(first, owner)
    assert first.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 302
    assert first.session["_auth_user_id"] == str(owner.pk)

    again = Client()
    sign_in(again, owner)
    reused = again.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert reused.status_code == 200 and "Incorrect code" in reused.content.decode()
    assert "_auth_user_id" not in again.session
    assert again.post("/accounts/2fa/authenticate/", {"code": codes[1]}).status_code == 302


@pytest.mark.parametrize("role", ["agent", "analyst"])
def test_any_member_may_turn_two_factor_on(role: str, request: pytest.FixtureRequest) -> None:
    user: User = request.getfixturevalue(role)
    secret, _ = activate_totp(user)
    client = Client()
    assert sign_in(client, user) == "/accounts/2fa/authenticate/"
    assert client.post("/accounts/2fa/authenticate/", {"code": totp_now(secret)}).status_code == 302
