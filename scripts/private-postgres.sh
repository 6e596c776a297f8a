#!/usr/bin/env bash
# Ensures this checkout's own private PostgreSQL (15) dev/test server is running
# and that the database `studyledger` exists.
#
# Last line on stdout:  DATABASE_URL=postgres://postgres@127.0.0.1:<port>/studyledger
# Everything else goes to stderr, so callers can take `| tail -n 1`.
#
# Idempotent: reuses the cluster, starts it if stopped, does nothing if running.
#
#   scripts/private-postgres.sh stop            stops the cluster (when it runs)
#   scripts/private-postgres.sh resetwal ARGS   freezes every database, stops the cluster and
#                                               runs pg_resetwal ARGS on it (the next run starts
#                                               it again): the README's restore runbook
#
# Environment:
#   STUDYLEDGER_PG_DIR            the cluster's folder (default: <checkout>/.pgdata)
#   STUDYLEDGER_PG_PORT           port to listen on (default: 55000 + cksum(checkout path) % 1000)
#   STUDYLEDGER_PG_BINDIR         directory holding initdb/pg_ctl/postgres (default: auto-detect)
#   STUDYLEDGER_PG_START_TIMEOUT  seconds to wait for the server to accept connections (default 60)
#
# Layout (everything inside one folder, by default <checkout>/.pgdata, git-ignored):
#   data/          the cluster (PGDATA)
#   socket/        unix socket (not /var/run/postgresql: may be missing or not writable)
#   postgres.log   server log
set -euo pipefail

# Keep stdout for the final DATABASE_URL line only: fd 3 is the real stdout and
# everything else (apt-get, initdb, pg_ctl, ...) goes to stderr.
exec 3>&1 1>&2

log() { printf 'private-postgres: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
ROOT_DIR="$(cd "$(dirname "$SCRIPT_PATH")/.." && pwd -P)"
DB_NAME=studyledger
DB_SUPERUSER=postgres
LINK=${STUDYLEDGER_PG_DIR:-$ROOT_DIR/.pgdata}
# Absolute (commands below may run from /), without resolving a symlink: .pgdata may be one.
[[ $LINK == /* ]] || LINK=$PWD/$LINK
ACTION=${1:-start}
case $ACTION in start | stop | resetwal) ;; *) die "unknown action '$ACTION' (start, stop, resetwal ARGS)" ;; esac
[[ $# -gt 0 ]] && shift

# Our own client calls must not be redirected by the caller's libpq environment.
unset PGSERVICE PGOPTIONS PGSSLMODE PGHOSTADDR || true
export PGCONNECT_TIMEOUT=5

# Serialise concurrent runs (e.g. scripts/run and scripts/test started together) so
# they don't both initdb/start the same cluster. Locking the script file itself
# avoids creating yet another file in the checkout.
exec 9<"$SCRIPT_PATH"
if command -v flock >/dev/null 2>&1; then
    flock -w 300 9 || die "timed out waiting for another run of $SCRIPT_PATH"
fi

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

# ---------------------------------------------------------------------------
# Port: stable per checkout so several checkouts can run side by side.
if [[ -n ${STUDYLEDGER_PG_PORT:-} ]]; then
    PORT=$STUDYLEDGER_PG_PORT
    if ! [[ $PORT =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
        die "STUDYLEDGER_PG_PORT must be a TCP port number, got '$PORT'"
    fi
else
    sum=$(printf '%s' "$ROOT_DIR" | cksum | cut -d' ' -f1)
    PORT=$((55000 + sum % 1000))
fi

# ---------------------------------------------------------------------------
# Server binaries. Debian keeps them off PATH, in /usr/lib/postgresql/<major>/bin.
has_server_bins() { [[ -n $1 && -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]; }

find_bindir() {
    local d candidates=("${STUDYLEDGER_PG_BINDIR:-}" /usr/lib/postgresql/15/bin)
    if command -v pg_config >/dev/null 2>&1; then
        candidates+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    # Any other installed major version, newest first.
    while IFS= read -r d; do candidates+=("$d"); done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
    if command -v initdb >/dev/null 2>&1; then
        candidates+=("$(dirname "$(command -v initdb)")")
    fi
    for d in "${candidates[@]}"; do
        if has_server_bins "$d"; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

if ! BINDIR=$(find_bindir); then
    if ((IS_ROOT)) && command -v apt-get >/dev/null 2>&1; then
        # Debian may also create and start its own `main` cluster on 5432; we don't use it.
        # fds 3/9 are closed so a server started by the package can't hold our stdout/lock.
        log "PostgreSQL server binaries not found; installing Debian package 'postgresql'"
        apt-get update 3>&- 9>&-
        DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql 3>&- 9>&-
        BINDIR=$(find_bindir) || die "installed 'postgresql' but still cannot find initdb/pg_ctl/postgres"
    else
        die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found.
Install them with:   sudo apt-get install postgresql
(or point STUDYLEDGER_PG_BINDIR at a directory containing initdb, pg_ctl and postgres)"
    fi
fi

# ---------------------------------------------------------------------------
# Which OS user runs the server. initdb/postgres refuse to run as root.
pick_service_user() {
    if id -u postgres >/dev/null 2>&1; then
        echo postgres
        return
    fi
    if ! id -u studyledger-pg >/dev/null 2>&1; then
        log "creating system user studyledger-pg to own the private cluster"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin studyledger-pg >&2
    fi
    echo studyledger-pg
}

# Run a command as the cluster owner. fds 3 (our stdout) and 9 (the lock) are
# closed: the postmaster would otherwise inherit them, keeping a caller's
# `$(...)` open forever and the lock held for the server's lifetime.
# As root, commands run from / since the service user may not be able to enter
# the current directory (all paths used are absolute).
as_pg() {
    if ((IS_ROOT)); then
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u "$PG_OS_USER" -- "$@") 3>&- 9>&-
        else
            (cd / && su -s /bin/bash "$PG_OS_USER" -c "$(printf '%q ' "$@")") 3>&- 9>&-
        fi
    else
        "$@" 3>&- 9>&-
    fi
}

# Where the cluster lives: <checkout>/.pgdata, or wherever that symlink points.
if [[ -L $LINK ]]; then
    BASE=$(readlink -m "$LINK")
else
    BASE=$LINK
fi

if ((IS_ROOT)); then
    if [[ -f $BASE/data/PG_VERSION ]]; then
        # Existing cluster: keep using whoever owns it.
        PG_OS_USER=$(stat -c %U "$BASE/data")
        [[ $PG_OS_USER != root && $PG_OS_USER != UNKNOWN ]] ||
            die "cluster $BASE/data is owned by '$PG_OS_USER'; delete $LINK to recreate it"
    else
        PG_OS_USER=$(pick_service_user)
    fi

    # A checkout under e.g. /root (mode 700) is not reachable by the service user.
    # Then keep the cluster under /var/tmp and make .pgdata a symlink to it, so it is
    # still "the checkout's git-ignored .pgdata" for the developer.
    if [[ ! -L $LINK ]] && ! as_pg test -x "$(dirname "$LINK")" 2>/dev/null; then
        if [[ -f $LINK/data/PG_VERSION ]]; then
            die "$LINK holds a cluster that user $PG_OS_USER cannot reach (a parent folder is not traversable); delete $LINK to recreate it"
        fi
        rm -rf "$LINK" # only leftovers of ours (no cluster inside)
        hash=$(printf '%s' "$LINK" | sha256sum | cut -c1-16)
        [[ $LINK == "$ROOT_DIR/.pgdata" ]] && hash=$(printf '%s' "$ROOT_DIR" | sha256sum | cut -c1-16)
        BASE=/var/tmp/studyledger-pg/$hash
        ln -sfn "$BASE" "$LINK"
        log "$(dirname "$LINK") is not reachable by user $PG_OS_USER; cluster lives in $BASE (symlinked from $LINK)"
    fi

    # Shared parent must be traversable by the service user (also when the symlink
    # target was cleaned away from /var/tmp and gets recreated).
    if [[ $BASE == /var/tmp/studyledger-pg/* ]]; then
        install -d -m 755 -o root -g root /var/tmp/studyledger-pg
    fi
    if [[ ! -d $BASE ]]; then
        install -d -m 700 -o "$PG_OS_USER" -g "$(id -gn "$PG_OS_USER")" "$BASE"
    elif [[ $(stat -c %U "$BASE") != "$PG_OS_USER" && ! -f $BASE/data/PG_VERSION ]]; then
        # Leftover folder without a cluster (e.g. created by hand as root): hand it over.
        chown -R "$PG_OS_USER:$(id -gn "$PG_OS_USER")" "$BASE"
        chmod 700 "$BASE"
    fi
else
    PG_OS_USER=$(id -un)
    mkdir -p "$BASE"
    [[ -O $BASE ]] || die "$BASE belongs to another user (created as root?); delete $LINK or run as that user"
    chmod 700 "$BASE"
fi

PGDATA_DIR=$BASE/data
LOG_FILE=$BASE/postgres.log
SOCK_DIR=$BASE/socket
# Unix socket paths are limited to 107 bytes; fall back to a short /tmp folder
# for very deep checkouts.
if ((${#SOCK_DIR} + 16 > 107)); then
    SOCK_DIR=/tmp/studyledger-pg-sock-$(printf '%s:%s' "$BASE" "$PG_OS_USER" | sha256sum | cut -c1-12)
fi
as_pg mkdir -p -m 700 "$SOCK_DIR"

# Prefer the binaries matching an existing cluster's major version.
if [[ -f $PGDATA_DIR/PG_VERSION ]]; then
    cluster_ver=$(<"$PGDATA_DIR/PG_VERSION")
    bin_ver=$("$BINDIR/postgres" --version | grep -oE '[0-9]+' | head -n 1)
    if [[ $cluster_ver != "$bin_ver" ]]; then
        if has_server_bins "/usr/lib/postgresql/$cluster_ver/bin"; then
            BINDIR=/usr/lib/postgresql/$cluster_ver/bin
        else
            die "cluster in $PGDATA_DIR is PostgreSQL $cluster_ver but $BINDIR is $bin_ver; delete $LINK to recreate it"
        fi
    fi
fi

PSQL=$BINDIR/psql
[[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found"
PG_ISREADY=$BINDIR/pg_isready
[[ -x $PG_ISREADY ]] || PG_ISREADY=$(command -v pg_isready) || die "pg_isready not found"

pg_ctl_status() { as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; }

# Stopping never creates anything.
if [[ $ACTION == stop ]]; then
    if [[ -f $PGDATA_DIR/PG_VERSION ]] && pg_ctl_status; then
        as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >&2
    fi
    exit 0
fi

# ---------------------------------------------------------------------------
# Create the cluster once. initdb goes to a temp folder that is renamed when
# complete, so an interrupted run never leaves a half-initialised cluster behind.
if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
    if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
        LOCALE=C.UTF-8
    else
        LOCALE=C
    fi
    log "initialising cluster in $PGDATA_DIR (locale $LOCALE, $BINDIR)"
    tmp=$BASE/data.initdb-tmp
    as_pg rm -rf "$tmp" "$PGDATA_DIR"
    # trust auth is acceptable: the server listens on 127.0.0.1 only and is for dev/tests.
    extra=()
    # The printed start instructions would name the temp folder; hide them where possible.
    if "$BINDIR/initdb" --help 2>/dev/null | grep -q -- --no-instructions; then extra+=(--no-instructions); fi
    as_pg "$BINDIR/initdb" -D "$tmp" -U "$DB_SUPERUSER" --auth=trust --encoding=UTF8 --locale="$LOCALE" "${extra[@]}" >&2
    echo "include_if_exists = 'studyledger.conf'" | as_pg tee -a "$tmp/postgresql.conf" >/dev/null
    as_pg mv "$tmp" "$PGDATA_DIR"
fi

# Our settings are rewritten on every run (port may have changed); they apply at the next start.
sq() { printf '%s' "${1//\'/\'\'}"; }
as_pg tee "$PGDATA_DIR/studyledger.conf" >/dev/null <<EOF
# Written by scripts/private-postgres.sh on every run: change the script, not this file.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$(sq "$SOCK_DIR")'
max_connections = 300            # tests open one pool per test database
# Enough to keep a 10,000-member ledger's event indexes in memory while a bulk import appends
# (at 256MB backends wrote out their own dirty pages; see the README's import figures).
shared_buffers = 1GB
# Checkpoints by time rather than every gigabyte of WAL during imports and replays.
max_wal_size = 4GB
# Durability stays on: we benchmark commit rates against PostgreSQL.
fsync = on
synchronous_commit = on
full_page_writes = on
EOF

# ---------------------------------------------------------------------------
# Start (or restart when the port changed).
PIDFILE=$PGDATA_DIR/postmaster.pid


fail_with_log() {
    log "ERROR: $*"
    if [[ -f $LOG_FILE ]]; then
        log "last lines of $LOG_FILE:"
        tail -n 40 "$LOG_FILE" >&2 || true
    fi
    exit 1
}

# After a container restart the pid in a leftover postmaster.pid may belong to
# an unrelated process, which would make PostgreSQL refuse to start.
if [[ -f $PIDFILE ]]; then
    pid=$(head -n 1 "$PIDFILE" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ && -e /proc/$pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) != postgres* ]]; then
        log "removing stale $PIDFILE (pid $pid is not a postgres process)"
        as_pg rm -f "$PIDFILE"
    fi
fi

if pg_ctl_status; then
    running_port=$(sed -n 4p "$PIDFILE" 2>/dev/null || true)
    if [[ $running_port == "$PORT" ]]; then
        log "server already running on 127.0.0.1:$PORT ($PGDATA_DIR)"
    else
        log "server is running on port ${running_port:-?}, restarting it on $PORT"
        as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$LOG_FILE" -m fast -W restart >&2 ||
            fail_with_log "pg_ctl restart failed"
    fi
else
    # Something else on our port would make the start fail in a confusing way.
    rc=0
    "$PG_ISREADY" -h 127.0.0.1 -p "$PORT" -t 2 -q 3>&- 9>&- || rc=$?
    if ((rc == 0 || rc == 1)); then
        die "another PostgreSQL server already listens on 127.0.0.1:$PORT; set STUDYLEDGER_PG_PORT to a free port"
    fi
    log "starting server on 127.0.0.1:$PORT (data $PGDATA_DIR, log $LOG_FILE, user $PG_OS_USER)"
    as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$LOG_FILE" -W start >&2 ||
        fail_with_log "pg_ctl start failed"
fi

# Bounded wait for readiness.
timeout=${STUDYLEDGER_PG_START_TIMEOUT:-60}
start=$SECONDS
until "$PG_ISREADY" -h 127.0.0.1 -p "$PORT" -U "$DB_SUPERUSER" -d postgres -t 2 -q 3>&- 9>&-; do
    if ((SECONDS - start >= timeout)); then
        fail_with_log "server did not accept connections on 127.0.0.1:$PORT within ${timeout}s"
    fi
    # Give the postmaster a moment to write its pid file, then fail fast if it died.
    if ((SECONDS - start >= 3)) && ! pg_ctl_status; then
        fail_with_log "server exited during startup"
    fi
    sleep 0.5
done

# ---------------------------------------------------------------------------
# Database for the application (tests create their own databases).
psql_super() {
    "$PSQL" -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$DB_SUPERUSER" -d postgres "$@" 3>&- 9>&-
}
if [[ $(psql_super -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") != 1 ]]; then
    log "creating database $DB_NAME"
    psql_super -c "CREATE DATABASE $DB_NAME"
fi

if [[ $ACTION == resetwal ]]; then
    # As pg_upgrade does before it moves a cluster's transaction ids: nothing left unfrozen.
    while IFS= read -r db; do
        "$PSQL" -X -w -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$DB_SUPERUSER" -d "$db" \
            -c "VACUUM (FREEZE)" 3>&- 9>&-
    done < <(psql_super -tAc "SELECT datname FROM pg_database WHERE datallowconn")
    as_pg "$BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >&2
    as_pg "$BINDIR/pg_resetwal" "$@" -D "$PGDATA_DIR" >&2
    log "pg_resetwal $* done; the next run starts the cluster"
    exit 0
fi

stop_cmd="$BINDIR/pg_ctl -D $PGDATA_DIR stop"
if ((IS_ROOT)); then stop_cmd="runuser -u $PG_OS_USER -- $stop_cmd"; fi
log "ready; stop with: $stop_cmd"
printf 'DATABASE_URL=postgres://%s@127.0.0.1:%s/%s\n' "$DB_SUPERUSER" "$PORT" "$DB_NAME" >&3
