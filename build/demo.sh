#!/usr/bin/env bash
# The demo, from a fresh Debian 12 machine: installs what is missing, builds the
# module and starts a cluster member on 127.0.0.1 (route node1) whose
# cluster-manager page shows what its pasted <Cluster> block means.
#
#   bash build/demo.sh          start (or restart) the demo
#   bash build/demo.sh stop     stop it
#
# DEMO_DIR (default /tmp/mod_session_cluster-demo), DEMO_PORT (8081) and
# DEMO_CLUSTER_PORT (4000) move it elsewhere.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-/tmp/mod_session_cluster-demo}"
DEMO_PORT="${DEMO_PORT:-8081}"
DEMO_CLUSTER_PORT="${DEMO_CLUSTER_PORT:-4000}"
HTTPD="${HTTPD:-/usr/sbin/apache2}"

stop_demo() {
  local pidfile="$DEMO_DIR/node1/httpd.pid"
  if [ -f "$pidfile" ]; then
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "demo: stopped node1 (pid $pid)"
    fi
  fi
}

if [ "${1:-start}" = "stop" ]; then
  stop_demo
  exit 0
fi

bash "$here/build/install-deps.sh"
bash "$here/build/build.sh" >/dev/null
stop_demo

libexecdir="$(apxs -q LIBEXECDIR)"
dir="$DEMO_DIR/node1"
mkdir -p "$dir/htdocs/app"
chmod 755 "$DEMO_DIR" "$dir" "$dir/htdocs" "$dir/htdocs/app"
echo "mod_session_cluster demo member node1" > "$dir/htdocs/app/index.html"
user=""
if [ "$(id -u)" -eq 0 ]; then user="User nobody
Group nogroup"; fi
sed -e "s|@DIR@|$dir|g" -e "s|@LIBEXECDIR@|$libexecdir|g" \
    -e "s|@MODULE@|$here/mod_session_cluster/.libs/mod_session_cluster.so|g" \
    -e "s|@PORT@|$DEMO_PORT|g" -e "s|@CLUSTER_PORT@|$DEMO_CLUSTER_PORT|g" \
    -e "s|@ROUTE@|node1|g" "$here/conf/demo-member.conf.in" \
  | awk -v user="$user" '{ if ($0 == "@USER@") print user; else print }' > "$dir/httpd.conf"

"$HTTPD" -f "$dir/httpd.conf" -t
"$HTTPD" -f "$dir/httpd.conf"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$DEMO_PORT/cluster-manager?auto" >/dev/null 2>&1; then
    echo "demo: node1 is up (pid $(cat "$dir/httpd.pid"))"
    echo "demo: cluster-manager page   http://127.0.0.1:$DEMO_PORT/cluster-manager"
    echo "demo: its text form          http://127.0.0.1:$DEMO_PORT/cluster-manager?auto"
    echo "demo: configuration          $dir/httpd.conf"
    echo "demo: stop with              bash build/demo.sh stop"
    exit 0
  fi
  sleep 0.1
done
echo "demo: node1 did not answer on port $DEMO_PORT; its error log:" >&2
tail -n 20 "$dir/error_log" >&2
exit 1
