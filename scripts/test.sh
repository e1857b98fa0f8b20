#!/usr/bin/env bash
# `npm test`: installs what the tests need when it is missing, then runs the whole suite
# (arguments go to vitest: `npm test -- test/e2e/sessions.test.ts`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: psql (golden tests), kcat (an independent Kafka producer), a JDK and Maven
# (the Kafka broker and pgjdbc come from Maven Central), psycopg 3, psycopg2, SQLAlchemy and pandas
# for the driver tests.
need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
/usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1 || need_apt+=(python3-psycopg)
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || need_apt+=(python3-psycopg2)
/usr/bin/python3 -c 'import sqlalchemy' >/dev/null 2>&1 || need_apt+=(python3-sqlalchemy)
/usr/bin/python3 -c 'import pandas' >/dev/null 2>&1 || need_apt+=(python3-pandas)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]} from Debian"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The external-store tests use the machine's PostgreSQL server on 127.0.0.1:5432.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi

[ -d node_modules/vitest ] || npm install --no-audit --no-fund
# Fetch the Kafka broker jars once, before the tests race for them.
node --import tsx scripts/kafka.ts --fetch >/dev/null
exec npx vitest run "$@"
