# CX Platform image: web (gunicorn + uvicorn workers), Celery worker and beat all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Templates, static/ and manage.py live in /app; import the project from there, not site-packages.
    PYTHONPATH=/app \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/media \
    # gunicorn's worker count; about 1 per core (ASGI workers each serve many connections).
    WEB_CONCURRENCY=2

WORKDIR /app
RUN groupadd --system --gid 10001 cx && useradd --system --uid 10001 --gid cx --home-dir /app --no-create-home cx

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && DEBUG=false SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
       python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /app/media \
    && chown -R cx:cx /app/media

USER cx
EXPOSE 8000
CMD ["gunicorn", "cxplatform.asgi:application", "-k", "cxplatform.server.UvicornWorker", "--bind", "0.0.0.0:8000", \
     "--access-logfile", "-"]
