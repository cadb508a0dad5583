#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the PgStore tests and benches.
#
#   eval "$(bash .ci/postgres.sh start)"   # prints `export TOPOSTATE_PG_URL=...` (and _DIR)
#   bash .ci/postgres.sh url               # the URL of the running cluster
#   bash .ci/postgres.sh stop              # stops it and removes its directory
#
# Run as root on Debian: installs postgresql-15 from the system's packages if it is missing,
# makes a cluster in a directory owned by the `postgres` user (initdb, trust auth: it listens
# on 127.0.0.1 only, with its Unix socket inside that directory), starts it on a free port,
# creates the database `topostate` and prints the URL. Idempotent: `start` on a running
# cluster prints its URL again; `start` on a stopped one starts it again; `stop` on none does
# nothing. Everything it says goes to stderr; only the exports go to stdout.
#
# The directory is $TOPOSTATE_PG_DIR, else /tmp/topostate-pg. The cluster trades durability
# for speed (fsync off): it is for tests, never for data.
set -euo pipefail

PG_VERSION=15
BIN=/usr/lib/postgresql/$PG_VERSION/bin
DIR=${TOPOSTATE_PG_DIR:-/tmp/topostate-pg}
DATA=$DIR/data
DB=topostate
RUN_AS=postgres

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    if [[ -f $DIR/server.log ]]; then
        say "last lines of $DIR/server.log:"
        tail -n 20 "$DIR/server.log" >&2 || true
    fi
    exit 1
}

as_pg() { runuser -u "$RUN_AS" -- "$@"; }

install_server() {
    if [[ -x $BIN/initdb && -x $BIN/pg_ctl && -x $BIN/postgres ]]; then
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "PostgreSQL $PG_VERSION is not installed and installing it needs root"
    say "installing postgresql-$PG_VERSION from the system's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq "postgresql-$PG_VERSION" >&2 || die "apt-get install postgresql-$PG_VERSION failed"
    [[ -x $BIN/initdb ]] || die "postgresql-$PG_VERSION installed, but $BIN/initdb is missing"
}

port_in_use() {
    # Something answers on 127.0.0.1:$1.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The postmaster's pid if it is alive (a zombie left by a crash does not count).
live_pid() {
    local pid state
    [[ -f $DATA/postmaster.pid ]] || return 1
    pid=$(head -n 1 "$DATA/postmaster.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]] || return 1
    echo "$pid"
}

# Running and accepting connections on its port.
running() {
    live_pid >/dev/null && [[ -f $DIR/port ]] &&
        "$BIN/pg_isready" -q -h "$DIR" -p "$(cat "$DIR/port")" >/dev/null 2>&1
}

url() {
    local port
    port=$(cat "$DIR/port" 2>/dev/null) || die "no cluster in $DIR (run: $0 start)"
    printf 'postgresql://%s@127.0.0.1:%s/%s\n' "$RUN_AS" "$port" "$DB"
}

print_exports() {
    printf 'export TOPOSTATE_PG_URL=%q\n' "$(url)"
    printf 'export TOPOSTATE_PG_DIR=%q\n' "$DIR"
}

start_server() {
    # Tries ports from a base derived from the directory name, skipping used ones.
    local base port tries
    base=$((20000 + $(printf '%s' "$DIR" | cksum | cut -d' ' -f1) % 20000))
    if [[ -f $DIR/port ]]; then
        base=$(cat "$DIR/port")
    fi
    for ((tries = 0; tries < 40; tries++)); do
        port=$((base + tries))
        if port_in_use "$port"; then
            continue
        fi
        echo "$port" >"$DIR/port"
        if as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$DIR \
                -c max_connections=300 -c fsync=off -c synchronous_commit=off \
                -c full_page_writes=off" >&2; then
            say "listening on 127.0.0.1:$port (socket in $DIR)"
            return
        fi
        # Lost a race for the port, or a real failure: the log says which.
        if ! grep -q "could not bind\|Address already in use" "$DIR/server.log" 2>/dev/null; then
            die "the server did not start"
        fi
    done
    die "no free port found from $base on"
}

start() {
    [[ $(id -u) -eq 0 ]] || die "run as root (the cluster belongs to the '$RUN_AS' user)"
    install_server
    id "$RUN_AS" >/dev/null 2>&1 || die "no '$RUN_AS' user (the postgresql package creates it)"
    if running; then
        say "already running in $DIR"
        print_exports
        return
    fi
    if live_pid >/dev/null; then
        die "a server owns $DATA but does not accept connections; run: $0 stop"
    fi
    # A crashed server's pid file would stop the new one from starting.
    rm -f "$DATA/postmaster.pid"
    mkdir -p "$DIR"
    chown "$RUN_AS": "$DIR"
    chmod 0700 "$DIR"
    if [[ ! -f $DATA/PG_VERSION ]]; then
        rm -rf "$DATA"
        say "initdb in $DATA"
        as_pg "$BIN/initdb" -D "$DATA" -U "$RUN_AS" --auth=trust --encoding=UTF8 \
            --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
            { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    start_server
    local port exists
    port=$(cat "$DIR/port")
    exists=$(as_pg "$BIN/psql" -h "$DIR" -p "$port" -U "$RUN_AS" -d postgres -Atq \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DB'") || die "psql could not connect"
    if [[ $exists != 1 ]]; then
        as_pg "$BIN/createdb" -h "$DIR" -p "$port" -U "$RUN_AS" "$DB" || die "createdb $DB failed"
    fi
    say "database ready: $(url)"
    print_exports
}

stop() {
    if [[ ! -d $DIR ]]; then
        say "nothing to stop in $DIR"
        return
    fi
    if live_pid >/dev/null; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >&2 ||
            as_pg "$BIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >&2 ||
            die "the server in $DATA does not stop; $DIR is left as it is"
    fi
    rm -rf "$DIR"
    say "stopped and removed $DIR"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *)
        say "usage: $0 start|stop|url   (directory: \$TOPOSTATE_PG_DIR, default /tmp/topostate-pg)"
        exit 2
        ;;
esac
