#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: installs what is missing, builds the
# module and the demo page, and starts a cluster of httpd members on 127.0.0.1
# (conf/demo-cluster-2.conf, or -3 with DEMO_MEMBERS=3) that share their sessions.
#
#   bash build/demo.sh          start (or restart) the demo
#   bash build/demo.sh stop     stop it
#
# DEMO_MEMBERS (2 or 3), DEMO_DIR (default /tmp/mod_session_cluster-demo) and
# DEMO_PORT (the first member's HTTP port, default 8081) change it.  The members'
# cluster ports are 4001-4003 (written in the configuration files).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-/tmp/mod_session_cluster-demo}"
DEMO_PORT="${DEMO_PORT:-8081}"
DEMO_MEMBERS="${DEMO_MEMBERS:-2}"
HTTPD="${HTTPD:-/usr/sbin/apache2}"

stop_demo() {
  local pidfile pid
  for pidfile in "$DEMO_DIR"/node*/httpd.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "demo: stopped $(basename "$(dirname "$pidfile")") (pid $pid)"
    fi
  done
}

if [ "${1:-start}" = "stop" ]; then
  stop_demo
  exit 0
fi
case "$DEMO_MEMBERS" in 2|3) ;; *) echo "demo: DEMO_MEMBERS must be 2 or 3" >&2; exit 2;; esac

bash "$here/build/install-deps.sh"
bash "$here/build/build.sh" >/dev/null
stop_demo

libexecdir="$(apxs -q LIBEXECDIR)"
conf="$here/conf/demo-cluster-$DEMO_MEMBERS.conf"
root=()
[ "$(id -u)" -eq 0 ] && root=(-D SC_AS_ROOT)
mkdir -p "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
for i in $(seq 1 "$DEMO_MEMBERS"); do
  dir="$DEMO_DIR/node$i"
  mkdir -p "$dir"
  chmod 755 "$dir"
  args=(-f "$conf" "${root[@]}"
        -C "Define SC_DEMO_DIR $dir" -C "Define SC_LIBEXECDIR $libexecdir"
        -C "Define SC_MODULE $here/mod_session_cluster/.libs/mod_session_cluster.so"
        -C "Define SC_DEMO_MODULE $here/demo/.libs/mod_session_cluster_demo.so"
        -C "Define SC_ROUTE node$i" -C "Define SC_PORT $((DEMO_PORT + i - 1))"
        -C "Define SC_CLUSTER_PORT $((4000 + i))")
  "$HTTPD" "${args[@]}" -t >/dev/null
  "$HTTPD" "${args[@]}"
done
for i in $(seq 1 "$DEMO_MEMBERS"); do
  port=$((DEMO_PORT + i - 1))
  up=""
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/cluster-manager?auto" 2>/dev/null | grep -q '^EngineState: ready'; then
      up=1; break
    fi
    sleep 0.1
  done
  if [ -z "$up" ]; then
    echo "demo: node$i did not become ready on port $port; its error log:" >&2
    tail -n 20 "$DEMO_DIR/node$i/error_log" >&2
    exit 1
  fi
  echo "demo: node$i is up (pid $(cat "$DEMO_DIR/node$i/httpd.pid"))   demo page http://127.0.0.1:$port/app   cluster-manager http://127.0.0.1:$port/cluster-manager"
done
echo "demo: the members share their sessions: open /app on one member, then on another with the same cookie;"
echo "demo: curl -c /tmp/jar -b /tmp/jar 'http://127.0.0.1:$DEMO_PORT/app?auto' then 'http://127.0.0.1:$((DEMO_PORT + 1))/app?auto'"
echo "demo: configuration $conf; stop with: bash build/demo.sh stop"
