#!/usr/bin/env bash
# One database per service, each owned by a login role of the same name, so that no service
# can read another's tables. The postgres image runs this once, on an empty data directory
# (docker-entrypoint-initdb.d); the passwords come from <SERVICE>_DB_PASSWORD.
set -euo pipefail

for service in membership training stations gateway; do
    password_var="${service^^}_DB_PASSWORD"
    password="${!password_var:?$password_var is not set}"
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
    echo "init-databases: created database and role $service"
done
