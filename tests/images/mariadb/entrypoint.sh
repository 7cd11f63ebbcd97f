#!/bin/sh
# Initialise the data directory once (root's password, a database from the environment), then run mariadbd;
# arguments go to mariadbd (`--skip-networking` makes it listen on its socket only).
set -eu
[ -n "${MARIADB_ROOT_PASSWORD_FILE:-}" ] && MARIADB_ROOT_PASSWORD=$(cat "$MARIADB_ROOT_PASSWORD_FILE")
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
set -- mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=127.0.0.1 "$@"
if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
    # root logs in with the password only (no unix_socket), as in the official image
    cat > /run/mysqld/init.sql <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '${MARIADB_ROOT_PASSWORD:?set MARIADB_ROOT_PASSWORD}';
${MARIADB_DATABASE:+CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;}
SQL
    chown mysql /run/mysqld/init.sql
    set -- "$@" --init-file=/run/mysqld/init.sql
fi
exec "$@"
