"""Deployment: production-like settings pass Django's deploy checks, and .env.example documents every variable."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "cx.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://cx.example.com",
    "SITE_URL": "https://cx.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "BEHIND_TLS_PROXY": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_check_deploy_reports_nothing_with_production_values(tmp_path: Path) -> None:
    # Only production values: nothing that the test run itself sets (DJANGO_ALLOW_ASYNC_UNSAFE, CX_TASKS_INLINE...).
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if name in os.environ}
    env.update(PRODUCTION_ENV)
    # The database stays whatever the run uses: on PostgreSQL the check also proves the role cannot bypass RLS.
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'deploy-check.sqlite3'}"
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


SETTINGS_VARIABLE = re.compile(r"""\benv\.\w+\(\s*["']([A-Z][A-Z0-9_]*)["']""")
EXAMPLE_VARIABLE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def test_env_example_lists_every_setting_read_from_the_environment() -> None:
    read = set(SETTINGS_VARIABLE.findall((ROOT / "cxplatform" / "settings.py").read_text()))
    listed = set(EXAMPLE_VARIABLE.findall((ROOT / ".env.example").read_text()))
    assert len(read) > 20, f"found too few env reads in settings.py: {sorted(read)}"
    assert read - listed == set(), f".env.example misses {sorted(read - listed)}"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")  # Debian's package (apt-get install docker-compose)
    return [legacy] if legacy else None


@pytest.mark.skipif(_compose_command() is None, reason="neither `docker compose` nor docker-compose is installed")
def test_docker_compose_accepts_the_file() -> None:
    compose = _compose_command()
    assert compose is not None
    result = subprocess.run([*compose, "config", "--services"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(result.stdout.split())
