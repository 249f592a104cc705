#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests (scripts/test.sh) and for running them by hand:
# Debian's package (scripts/setup.sh installs it), a cluster of its own in target/pg/ (data/,
# server.log, and the socket), reachable only through that socket (no TCP), trust authentication,
# the superuser `postgres` (tests create their own databases). fsync stays on: the receiver's
# durability is what its benchmarks measure. Nothing here uses Debian's system cluster (`main`).
#
#   bash scripts/pg.sh start    start it (initdb first when target/pg/data is missing; an existing
#                               one is kept) and wait until it is ready; prints the URL. Already
#                               running: just prints the URL. After a crash (kill -9), it cleans up
#                               what the dead server left (its processes, stale pid and lock files).
#   bash scripts/pg.sh stop     fast shutdown; nothing to do when it is not running
#   bash scripts/pg.sh url      the URL of its `postgres` database, e.g.
#                               postgres:///postgres?host=/repo/target/pg&port=5432&user=postgres
#                               (libpq/psql and sqlx both read this form)
#   bash scripts/pg.sh status   exit status 0 when it is running, 3 when not
#
# SM_PG_DIR picks another directory than target/pg (relative to the repo, or absolute); the test
# command uses one per run, target/pg/run-<pid>, so that two runs in one checkout don't share one.
#
# initdb and postgres refuse to run as root: as root, the server runs as the package's `postgres`
# user, which then owns the directory, so every directory above it must be traversable by other
# users (a checkout under a home directory of mode 700 is not; `start` says so).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'pg: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

dir=${SM_PG_DIR:-target/pg}
dir=$(realpath -m -- "$dir")
data=$dir/data
port=5432 # the socket's name (.s.PGSQL.5432): the directory is this server's own, so no clash
socket=$dir/.s.PGSQL.$port
log=$dir/server.log

# pg_ctl hands the paths to /bin/sh in double quotes and the socket directory to postgres as a
# list; a path with quotes, `$`, `\` or a comma would be read as something else.
case $dir in
  *[!A-Za-z0-9\ /._+@:=~%-]*) die "the path $dir has characters this script does not quote for pg_ctl (only letters, digits, space and / . _ + @ : = ~ % -)" ;;
esac
# A unix socket's path has at most 107 bytes.
[ "${#socket}" -le 107 ] || die "the socket path $socket is longer than the 107 bytes a unix socket allows: use a shorter checkout path (or SM_PG_DIR)"

# The URL: the socket directory percent-encoded as a query value (libpq and sqlx both decode it).
urlencode() {
  local s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9/._~-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}
url="postgres:///postgres?host=$(urlencode "$dir")&port=$port&user=postgres"

# Debian's binaries (not on PATH): the newest installed major version.
bindir=
for candidate in /usr/lib/postgresql/*/bin; do
  for tool in initdb pg_ctl postgres pg_isready; do
    [ -x "$candidate/$tool" ] || continue 2
  done
  if [ -z "$bindir" ] || [ "$(printf '%s\n%s\n' "$bindir" "$candidate" | sort -V | tail -n1)" = "$candidate" ]; then
    bindir=$candidate
  fi
done

# Runs a command as the server's user: `postgres` when we are root, else ourselves. From the
# server's directory, so that it never starts in a directory that user cannot enter.
as_server() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

# The pid of this directory's postmaster, when it runs (a live postmaster's working directory is
# its data directory; a pid in a stale postmaster.pid may belong to another process by now).
postmaster_pid() {
  local pid
  pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$data" ] || return 1
  echo "$pid"
}

# Server processes of this data directory that outlived their postmaster (after a kill -9 the
# backends go on a moment; a postmaster whose directory was removed goes on for up to a minute).
leftovers() {
  local p comm cwd
  for p in /proc/[0-9]*; do
    { read -r comm <"$p/comm"; } 2>/dev/null || continue # (a builtin: no process per process)
    [ "$comm" = postgres ] || continue
    cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
    if [ "$cwd" = "$data" ] || [ "$cwd" = "$data (deleted)" ]; then echo "${p#/proc/}"; fi
  done
}
end_leftovers() {
  local pids i
  pids=$(leftovers)
  [ -n "$pids" ] || return 0
  say "ending server processes of $data that its postmaster.pid does not name (a crash, or a removed directory): ${pids//$'\n'/ }"
  # shellcheck disable=SC2086
  kill -QUIT $pids 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pids=$(leftovers)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
  sleep 0.5
  pids=$(leftovers)
  [ -z "$pids" ] || die "the processes ${pids//$'\n'/ } of $data do not end"
}

wait_ready() {
  local i
  for ((i = 0; i < 600; i++)); do
    "$bindir/pg_isready" -q -h "$dir" -p "$port" -U postgres -d postgres && return 0
    postmaster_pid >/dev/null || die "the server stopped while starting (see $log)"
    sleep 0.1
  done
  die "the server is not ready after 60 s (see $log)"
}

need_server() {
  [ -n "$bindir" ] || die "PostgreSQL's server is not installed (Debian's package postgresql): run scripts/setup.sh"
  if [ "$(id -u)" = 0 ]; then
    id -u postgres >/dev/null 2>&1 || die "there is no user postgres (Debian's package postgresql creates it): run scripts/setup.sh"
  fi
}

start() {
  need_server
  if postmaster_pid >/dev/null; then
    wait_ready
    echo "$url"
    return
  fi
  end_leftovers

  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir" -a -x "$dir"; then
      # The first directory, from / down, that it cannot enter.
      local p=/ part parts
      IFS=/ read -ra parts <<<"${dir#/}"
      for part in "${parts[@]}"; do
        runuser -u postgres -- test -x "$p" || break
        p=${p%/}/$part
      done
      die "the server runs as the user postgres (PostgreSQL refuses root), which cannot enter $p ($(stat -c '%A %U' "$p")): move the checkout where other users can traverse the path, or chmod o+x its parents"
    fi
  fi
  # The socket, and with it trust authentication, only for the server's user (and root).
  chmod 700 "$dir"

  if [ ! -d "$data" ]; then
    # Into a temporary name, so that an interrupted initdb never leaves a data directory that
    # the next start would take for a whole one.
    rm -rf "$data.new"
    as_server "$bindir/initdb" -D "$data.new" -U postgres --auth=trust -E UTF8 --no-locale \
      --no-instructions >"$dir/initdb.log" 2>&1 \
      || die "initdb failed (see $dir/initdb.log)"
    mv "$data.new" "$data"
  fi

  # After a crash: postgres itself takes over a postmaster.pid or socket lock file whose process
  # is gone; one whose pid now names another process (pids are reused) would stop it.
  local f pid
  for f in "$data/postmaster.pid" "$socket.lock"; do
    pid=$(head -n1 "$f" 2>/dev/null) || continue
    if [[ ! $pid =~ ^[0-9]+$ ]] || [ -d "/proc/$pid" ]; then
      say "removing the stale $f"
      rm -f "$f"
    fi
  done

  # Unix socket only (listen_addresses empty), in the server's directory; settings given at each
  # start, so that a moved checkout's kept data directory still listens where it now is.
  as_server "$bindir/pg_ctl" start -D "$data" -l "$log" -w -t 60 -s \
    -o "-p $port -k '$dir' -c listen_addresses=''" >&2 \
    || die "the server did not start (see $log)"
  wait_ready
  echo "$url"
}

stop() {
  local pid
  if pid=$(postmaster_pid); then
    [ -n "$bindir" ] || die "PostgreSQL's server is not installed, but a server runs (pid $pid)"
    as_server "$bindir/pg_ctl" stop -D "$data" -m fast -w -t 60 -s >&2 \
      || as_server "$bindir/pg_ctl" stop -D "$data" -m immediate -w -t 30 -s >&2 \
      || die "the server (pid $pid) did not stop"
  fi
  end_leftovers
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  url) echo "$url" ;;
  status) if postmaster_pid >/dev/null; then echo "running: $url"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: bash scripts/pg.sh start|stop|url|status" >&2; exit 2 ;;
esac
