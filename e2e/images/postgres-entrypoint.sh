#!/bin/sh
# The PostgreSQL image's entry point (e2e/images/Containerfile.postgres). On the first start (no
# $PGDATA/PG_VERSION) it makes the database cluster: superuser $POSTGRES_USER (default postgres)
# with password $POSTGRES_PASSWORD (required), database $POSTGRES_DB (default: the user's name),
# password (scram-sha-256) logins from any address, trust on the pod-local socket. Then it runs
# the server on every address, port 5432; its arguments go to the server (e.g. -c fsync=off).
set -eu

user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?must be set: the server accepts only password logins over TCP}"
    printf '%s\n' "$POSTGRES_PASSWORD" \
        | initdb --pgdata="$PGDATA" --username="$user" --pwfile=/dev/stdin \
            --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        # A server on the socket only, for as long as creating the database takes.
        pg_ctl --pgdata="$PGDATA" --silent --wait --options="-c listen_addresses=''" start
        psql --quiet --no-psqlrc --set=ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
            --set=database="$database" <<'SQL'
CREATE DATABASE :"database";
SQL
        pg_ctl --pgdata="$PGDATA" --silent --wait --mode=fast stop
    fi
    echo "postgres-entrypoint: made the database cluster in $PGDATA (user $user, database $database)"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' -c port=5432 "$@"
