#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data directory (docker-entrypoint-initdb.d).
# The image's POSTGRES_USER is a superuser, and superusers bypass row-level security; so the app gets
# its own role, which is not a superuser and has no BYPASSRLS, and which owns the app's database.
set -euo pipefail

: "${CX_APP_DB:=cx}"
: "${CX_APP_USER:=cx_app}"
: "${CX_APP_PASSWORD:?set CX_APP_PASSWORD}"

psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v app_db="$CX_APP_DB" -v app_user="$CX_APP_USER" -v app_password="$CX_APP_PASSWORD" <<'SQL'
CREATE ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD :'app_password';
CREATE DATABASE :"app_db" OWNER :"app_user";
\connect :"app_db"
-- The app's role owns the public schema, so its migrations can create tables there and nobody else can.
ALTER SCHEMA public OWNER TO :"app_user";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
