#!/usr/bin/env bash
# Installs the Debian packages mod_session_cluster needs to build, test and run
# its demo.  Idempotent: installs only what is missing.  Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential autoconf automake libtool pkg-config   # the build
  apache2 apache2-dev libapr1-dev libaprutil1-dev         # httpd and apxs
  libxml2-dev                                             # the <Cluster> parser
  libssl-dev                                              # EncryptInterceptor (AES-GCM); the Kubernetes API (TLS)
  libjson-c-dev                                           # CloudMembershipService kubernetes (the PodList)
  openssl libio-socket-ssl-perl                           # cloud_kubernetes.t: its CA and HTTPS endpoint
  libapache2-mod-perl2 libwww-perl                        # Apache::Test suite
  iproute2 curl procps dnsmasq-base nftables              # multi-member harness, DNS membership test, silent members
  gdb                                                     # writer_killed.t: a process killed inside its write
  chromium fonts-dejavu-core                              # the status page test (headless)
  clang libclang-rt-14-dev                                # make fuzz (libFuzzer, sanitizers)
  debhelper dpkg-dev                                      # make deb, t/deb.t (the Debian package)
  prometheus                                              # promtool: t/cluster/prometheus.t
  memcached redis-server                                  # the session server tests (t/cluster/msm_*.t)
)

missing=()
for p in "${PKGS[@]}"; do
  [[ $p == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
