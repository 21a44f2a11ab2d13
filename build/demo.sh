#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: installs what is missing, builds the
# module and the demo page, and starts Tomcat's cluster topology on 127.0.0.1: a
# front balancer (conf/demo-front.conf: mod_proxy_balancer, sticky on
# JSESSIONID, SessionClusterBalancer) and httpd members that share their
# sessions (conf/demo-cluster-3.conf, or -2 with DEMO_MEMBERS=2).
#
#   bash build/demo.sh              start the demo (what is not running)
#   bash build/demo.sh crash node1  SIGKILL a member and all its processes
#   bash build/demo.sh stop         stop it
#
# DEMO_MEMBERS (3 or 2), DEMO_DIR (default /tmp/mod_session_cluster-demo),
# DEMO_PORT (the first member's HTTP port, default 8081; the front listens one
# below, 8080) and DEMO_FRONT=0 (members only) change it.  The cluster ports are
# 4000 (the front) and 4001-4003 (written in the configuration files).
#
# The test suite's variables choose what runs (make check and make check-asan
# set them; t/demo.t passes them on): SC_HTTPD (the httpd to run, or HTTPD;
# default /usr/sbin/apache2), SC_MODULE_SO and SC_DEMO_SO (the module and the
# demo page; default the checkout's build), SC_LIBEXECDIR (httpd's modules;
# default apxs -q LIBEXECDIR).  With SC_MODULE_SO given, the modules are
# built already: nothing is installed or built.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-/tmp/mod_session_cluster-demo}"
DEMO_PORT="${DEMO_PORT:-8081}"
DEMO_MEMBERS="${DEMO_MEMBERS:-3}"
DEMO_FRONT="${DEMO_FRONT:-1}"
FRONT_PORT=$((DEMO_PORT - 1))
HTTPD="${SC_HTTPD:-${HTTPD:-/usr/sbin/apache2}}"
MODULE_SO="${SC_MODULE_SO:-$here/mod_session_cluster/.libs/mod_session_cluster.so}"
DEMO_SO="${SC_DEMO_SO:-$here/demo/.libs/mod_session_cluster_demo.so}"

# alive, and not a zombie (a daemonised httpd that exited waits for PID 1 to
# reap it, and kill -0 still succeeds on it)
alive() {
  local st
  st="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# SIGTERM to each httpd; says "stopped" only of one that is gone with all its
# processes, and fails for one still running 30 s later.
stop_demo() {
  local pidfile pid name kids k left failed=0
  for pidfile in "$DEMO_DIR"/front/httpd.pid "$DEMO_DIR"/node*/httpd.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    name="$(basename "$(dirname "$pidfile")")"
    alive "$pid" || continue
    kids="$(pgrep -P "$pid" || true)"
    kill -TERM "$pid"
    for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
    left=""
    for k in $pid $kids; do alive "$k" && left="$left $k"; done
    if [ -n "$left" ]; then
      echo "demo: $name (pid $pid) did not stop within 30 s of SIGTERM: still running:$left" >&2
      failed=1
    else
      echo "demo: stopped $name (pid $pid and its processes $(echo $kids))"
    fi
  done
  return "$failed"
}

# A crash: SIGKILL to a member's parent and to all its processes (the engine
# and the children), as when the machine or the whole httpd dies.
crash_member() {
  local name="$1" pidfile pid kids k left
  pidfile="$DEMO_DIR/$name/httpd.pid"
  [ -f "$pidfile" ] || { echo "demo: no $name running (no $pidfile)" >&2; exit 2; }
  pid="$(cat "$pidfile")"
  alive "$pid" || { echo "demo: $name (pid $pid) is not running" >&2; exit 2; }
  kill -STOP "$pid"                   # no new children while we kill them
  kids="$(pgrep -P "$pid" || true)"
  # shellcheck disable=SC2086
  [ -n "$kids" ] && kill -KILL $kids
  kill -KILL "$pid"
  for _ in $(seq 1 100); do
    left=""
    for k in $pid $kids; do alive "$k" && left="$left $k"; done
    [ -z "$left" ] && break
    sleep 0.1
  done
  if [ -n "$left" ]; then
    echo "demo: $name: still running after SIGKILL:$left" >&2
    exit 1
  fi
  echo "demo: killed $name (pid $pid and its processes $(echo $kids)) with SIGKILL"
}

if [ "${1:-start}" = "stop" ]; then
  stop_demo || exit 1
  exit 0
fi
if [ "${1:-start}" = "crash" ]; then
  crash_member "${2:?usage: build/demo.sh crash nodeN}"
  exit 0
fi
case "$DEMO_MEMBERS" in 2|3) ;; *) echo "demo: DEMO_MEMBERS must be 2 or 3" >&2; exit 2;; esac
if [ "$DEMO_FRONT" = "1" ] && [ "$FRONT_PORT" -lt 1 ]; then
  echo "demo: DEMO_PORT must leave room for the front one port below it" >&2; exit 2
fi

if [ -z "${SC_MODULE_SO:-}" ]; then
  bash "$here/build/install-deps.sh"
  bash "$here/build/build.sh" >/dev/null
fi
for so in "$MODULE_SO" "$DEMO_SO"; do
  [ -f "$so" ] || { echo "demo: $so is missing (run make)" >&2; exit 1; }
done

# Polls a check every 0.1 s for 10 s.
within_10s() {
  local _
  for _ in $(seq 1 100); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}
member_ready() {
  curl -fsS "http://127.0.0.1:$1/cluster-manager?auto" 2>/dev/null | grep -q '^EngineState: ready'
}
front_ready() {
  [ "$(curl -fsS "http://127.0.0.1:$FRONT_PORT/cluster-manager?auto" 2>/dev/null \
        | grep -c '^BalancerMember: .* status=Ok member=ready')" = "$DEMO_MEMBERS" ]
}

# running already (a member that was crashed or stopped is started again)
running() {
  local pidfile="$DEMO_DIR/$1/httpd.pid"
  [ -f "$pidfile" ] || return 1
  alive "$(cat "$pidfile")"
}

libexecdir="${SC_LIBEXECDIR:-$(apxs -q LIBEXECDIR)}"
conf="$here/conf/demo-cluster-$DEMO_MEMBERS.conf"
root=()
[ "$(id -u)" -eq 0 ] && root=(-D SC_AS_ROOT)
mkdir -p "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
for i in $(seq 1 "$DEMO_MEMBERS"); do
  dir="$DEMO_DIR/node$i"
  if running "node$i"; then
    echo "demo: node$i runs already"
    continue
  fi
  rm -f "$dir/httpd.pid"
  mkdir -p "$dir"
  chmod 755 "$dir"
  args=(-f "$conf" "${root[@]}"
        -C "Define SC_DEMO_DIR $dir" -C "Define SC_LIBEXECDIR $libexecdir"
        -C "Define SC_MODULE $MODULE_SO"
        -C "Define SC_DEMO_MODULE $DEMO_SO"
        -C "Define SC_ROUTE node$i" -C "Define SC_PORT $((DEMO_PORT + i - 1))"
        -C "Define SC_CLUSTER_PORT $((4000 + i))")
  "$HTTPD" "${args[@]}" -t >/dev/null
  "$HTTPD" "${args[@]}"
done
for i in $(seq 1 "$DEMO_MEMBERS"); do
  port=$((DEMO_PORT + i - 1))
  if ! within_10s member_ready "$port"; then
    echo "demo: node$i did not become ready on port $port; its error log:" >&2
    tail -n 20 "$DEMO_DIR/node$i/error_log" >&2
    exit 1
  fi
  echo "demo: node$i is up (pid $(cat "$DEMO_DIR/node$i/httpd.pid"))   demo page http://127.0.0.1:$port/app   cluster-manager http://127.0.0.1:$port/cluster-manager"
done
if [ "$DEMO_FRONT" = "1" ]; then
  dir="$DEMO_DIR/front"
  mkdir -p "$dir"
  chmod 755 "$dir"
  if running front; then
    echo "demo: the front runs already"
  else
  args=(-f "$here/conf/demo-front.conf" "${root[@]}"
        -C "Define SC_DEMO_DIR $dir" -C "Define SC_LIBEXECDIR $libexecdir"
        -C "Define SC_MODULE $MODULE_SO"
        -C "Define SC_PORT $FRONT_PORT")
  for i in 1 2 3; do args+=(-C "Define SC_PORT$i $((DEMO_PORT + i - 1))"); done
  [ "$DEMO_MEMBERS" = "3" ] && args+=(-D SC_THREE)
  "$HTTPD" "${args[@]}" -t >/dev/null
  "$HTTPD" "${args[@]}"
  fi
  if ! within_10s front_ready; then
    echo "demo: the front did not see $DEMO_MEMBERS ready members on port $FRONT_PORT; its error log:" >&2
    tail -n 20 "$dir/error_log" >&2
    exit 1
  fi
  echo "demo: front is up (pid $(cat "$dir/httpd.pid"))   demo page http://127.0.0.1:$FRONT_PORT/app   balancer-manager http://127.0.0.1:$FRONT_PORT/balancer-manager   cluster-manager http://127.0.0.1:$FRONT_PORT/cluster-manager"
  echo "demo: open http://127.0.0.1:$FRONT_PORT/app in a browser: the page shows the member that answered and the counter;"
  echo "demo: then 'bash build/demo.sh crash nodeN' (the member that answered) and reload: another member answers, the counter goes on"
fi
echo "demo: the members share their sessions: open /app on one member, then on another with the same cookie;"
echo "demo: curl -c /tmp/jar -b /tmp/jar 'http://127.0.0.1:$DEMO_PORT/app?auto' then 'http://127.0.0.1:$((DEMO_PORT + 1))/app?auto'"
echo "demo: configuration $conf; stop with: bash build/demo.sh stop"
