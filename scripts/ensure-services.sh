#!/usr/bin/env bash
# Makes sure what the test suite talks to is running on this machine: PostgreSQL,
# Redis and NATS (JetStream) on their standard loopback ports, and Debian's Chromium,
# nginx and promtool for the browser, reverse-proxy and alert-rule tests. Idempotent and quick when everything is already up.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 50); do port_open "$port" && return 0; sleep 0.2; done
  echo "ensure-services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

if ! port_open 5432; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port 5432 PostgreSQL
fi

if ! port_open 6379; then
  echo "ensure-services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  wait_port 6379 Redis
fi

if ! port_open 4222; then
  echo "ensure-services: starting NATS"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  wait_port 4222 NATS
fi

# Debian packages the tests use as real tools: Chromium (browser tests), nginx (the
# reverse-proxy test runs deploy/nginx/fanout.conf) and prometheus (for promtool, which
# checks the exported alert rules). Installed together, after one apt-get update.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-services: installing Debian's ${missing[*]} for the tests"
  if [ "$(id -u)" = 0 ]; then
    # policy-rc.d keeps the packages' own services (nginx, prometheus) from starting: the tests run their own.
    policy=/usr/sbin/policy-rc.d
    added_policy=""
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1; fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
      || echo "ensure-services: could not install ${missing[*]}; the tests that use them will fail" >&2
    [ -n "$added_policy" ] && rm -f "$policy"
  else
    echo "ensure-services: not root; install them with: sudo apt-get install -y ${missing[*]}" >&2
  fi
fi
exit 0
