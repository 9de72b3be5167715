#!/usr/bin/env bash
# Start the PostgreSQL and MariaDB servers the SQL-source tests use, when they are not running.
# Both are installed on the development machine (see shared/design.md); this never installs anything.
set -u

wait_for() {  # wait_for NAME COMMAND...: poll for up to 30 s
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "start-services: $name did not come up on 127.0.0.1" >&2
  return 1
}

status=0
if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "start-services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432 || status=1
  fi
else
  echo "start-services: pg_isready not found; PostgreSQL tests will fail" >&2
  status=1
fi

mariadb_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping; }
if command -v mariadb-admin >/dev/null 2>&1; then
  if ! mariadb_up >/dev/null 2>&1; then
    echo "start-services: starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    wait_for MariaDB mariadb_up || status=1
  fi
else
  echo "start-services: mariadb-admin not found; MariaDB tests will fail" >&2
  status=1
fi
exit $status
