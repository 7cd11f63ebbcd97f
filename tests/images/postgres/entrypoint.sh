#!/bin/sh
# Initialise the cluster once (user, password, database from the environment), then run postgres; arguments go
# to postgres, as in the official image (`-c listen_addresses=` makes it listen on its socket only).
set -eu
[ -n "${POSTGRES_PASSWORD_FILE:-}" ] && POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
user=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA" /run/postgresql && chown postgres:postgres "$PGDATA" /run/postgresql
    printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > /tmp/pwfile && chown postgres /tmp/pwfile
    # local socket: trusted (the official image's default; the sidecar's dumps use it); TCP: a password
    su postgres -c "initdb -U '$user' --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 -D '$PGDATA'" >/dev/null
    rm -f /tmp/pwfile
    database=${POSTGRES_DB:-$user}
    if [ "$database" != postgres ]; then
        echo "CREATE DATABASE \"$database\";" | su postgres -c "postgres --single -D '$PGDATA' -j postgres" >/dev/null
    fi
fi
mkdir -p /run/postgresql && chown postgres:postgres /run/postgresql
exec runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 "$@"
