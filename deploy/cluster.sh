#!/usr/bin/env bash
# cluster.sh — the docker-compose topology as local processes, without Docker: redis-server,
# the clusterdemo nodes listed in deploy/nginx.conf (node1..node3) and nginx with that same
# configuration, all on 127.0.0.1.
#
#   deploy/cluster.sh up       build ./clusterdemo, start everything, wait until it answers
#   deploy/cluster.sh status   list the processes; exit 1 unless all of them run
#   deploy/cluster.sh down     stop everything: SIGTERM (nodes shut down gracefully), then
#                              SIGKILL whatever is still there after a grace period
#   deploy/cluster.sh stop NODE     stop one node as `down` does (its clients reconnect
#                                   through nginx to the other nodes)
#   deploy/cluster.sh start NODE    start a stopped node again, as `up` did
#   deploy/cluster.sh restart NODE  both: a rolling restart of one node
#
# Environment (defaults in brackets); `up` records the ports in the run directory, so
# `status` and `down` only need IOSWARM_RUN_DIR:
#   IOSWARM_RUN_DIR  run directory: pids/, logs/, nginx/ (generated config)
#                    [${TMPDIR:-/tmp}/ioswarm-cluster]
#   LB_PORT          nginx port [8080]
#   NODE_PORTS       one port per node, in nginx.conf order [3001 3002 3003]
#   REDIS_PORT       redis-server port [6380]
#   REDIS_KEY        channel prefix of the cluster [socket.io]
#   CLUSTERDEMO_BIN  a clusterdemo binary to run; unset: `go build` it into the run directory
#   NGINX_BIN        nginx executable [nginx, or /usr/sbin/nginx]
#   REDIS_BIN        redis-server executable [redis-server]
#   RECOVERY         the nodes' connection state recovery window [2m]; 0 turns it off (read by
#                    clusterdemo itself, so `start` uses the value it is given then)
#
# Logs: $IOSWARM_RUN_DIR/logs/*.log. nginx and redis-server come from the OS packages
# (Debian: apt-get install nginx redis-server); nginx is started with -p/-c/-e on the run
# directory, so it needs no root and leaves the system's nginx alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF="$ROOT/deploy/nginx.conf"
RUN="${IOSWARM_RUN_DIR:-${TMPDIR:-/tmp}/ioswarm-cluster}"
PIDS="$RUN/pids"
LOGS="$RUN/logs"

log() { printf 'cluster.sh: %s\n' "$*"; }
die() { printf 'cluster.sh: %s\n' "$*" >&2; exit 1; }

find_exe() { # find_exe NAME [FALLBACK...]: the first executable found
  local c
  for c in "$@"; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    if [ -x "$c" ]; then printf '%s\n' "$c"; return 0; fi
  done
  return 1
}

# alive PIDFILE: the process recorded in PIDFILE runs (a zombie or a recycled pid does not
# count: its command line must still contain the name recorded with the pid).
alive() {
  local pid name state
  [ -f "$1" ] || return 1
  read -r pid name <"$1" || return 1
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    state="$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)"
    [ "$state" != Z ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name" || return 1
  fi
  return 0
}

pid_of() { local pid _; read -r pid _ <"$1"; printf '%s\n' "$pid"; }

# start NAME MATCH CMD...: start CMD in the background, its output in logs/NAME.log, its pid
# (and MATCH, a word of its command line) in pids/NAME.pid.
start() {
  local name="$1" match="$2"
  shift 2
  nohup "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  printf '%s %s\n' "$!" "$match" >"$PIDS/$name.pid"
}

# wait_until SECONDS NAME CMD...: run CMD until it succeeds; fail when NAME's process dies or
# time runs out.
wait_until() {
  local secs="$1" name="$2" deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$PIDS/$name.pid" || { tail -n 20 "$LOGS/$name.log" >&2 || true; die "$name exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 20 "$LOGS/$name.log" >&2 || true; die "$name not ready after ${secs}s"; }
    sleep 0.1
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop GRACE NAME...: SIGTERM each, wait up to GRACE seconds for all, then SIGKILL the rest.
stop() {
  local grace="$1" name f deadline left killed=0
  shift
  for name in "$@"; do
    f="$PIDS/$name.pid"
    if alive "$f"; then kill -TERM "$(pid_of "$f")" 2>/dev/null || true; fi
  done
  deadline=$((SECONDS + grace))
  while :; do
    left=0
    for name in "$@"; do alive "$PIDS/$name.pid" && left=1; done
    if [ "$left" = 0 ] || [ "$SECONDS" -ge "$deadline" ]; then break; fi
    sleep 0.1
  done
  for name in "$@"; do
    f="$PIDS/$name.pid"
    if alive "$f"; then
      log "$name did not stop within ${grace}s: SIGKILL"
      kill -KILL "$(pid_of "$f")" 2>/dev/null || true
      killed=1
    fi
    rm -f "$f"
  done
  return "$killed"
}

# start_node BIN NAME PORT REDIS_PORT KEY: start one clusterdemo node.
start_node() {
  start "$2" "$(basename "$1")" "$1" -addr "127.0.0.1:$3" -node "$2" -redis "redis://127.0.0.1:$4/0" -key "$5"
}

# nodes: the node names of nginx.conf (comments aside), in order of first appearance.
nodes() { sed 's/#.*//' "$CONF" | grep -oE 'server[[:space:]]+node[0-9]+:3000' | awk '{ sub(/:3000$/, "", $2); if (!seen[$2]++) print $2 }'; }

cmd_up() {
  local f
  for f in "$PIDS"/*.pid; do
    if alive "$f"; then die "already running in $RUN (deploy/cluster.sh down first)"; fi
  done
  mkdir -p "$PIDS" "$LOGS" "$RUN/nginx"
  rm -f "$PIDS"/*.pid

  local lb_port="${LB_PORT:-8080}" redis_port="${REDIS_PORT:-6380}" key="${REDIS_KEY:-socket.io}"
  local -a names ports
  read -r -a ports <<<"${NODE_PORTS:-3001 3002 3003}"
  mapfile -t names < <(nodes)
  [ "${#names[@]}" -gt 0 ] || die "no \"server nodeN:3000\" line in $CONF"
  [ "${#names[@]}" -eq "${#ports[@]}" ] ||
    die "$CONF lists ${#names[@]} nodes (${names[*]}) but NODE_PORTS has ${#ports[@]} ports (${ports[*]})"

  local nginx redis bin
  nginx="$(find_exe "${NGINX_BIN:-nginx}" /usr/sbin/nginx)" || die "nginx not found (Debian: apt-get install nginx)"
  redis="$(find_exe "${REDIS_BIN:-redis-server}" /usr/sbin/redis-server)" || die "redis-server not found (Debian: apt-get install redis-server)"
  if [ -n "${CLUSTERDEMO_BIN:-}" ]; then
    bin="$CLUSTERDEMO_BIN"
  else
    bin="$RUN/clusterdemo"
    log "building ./clusterdemo"
    (cd "$ROOT" && go build -o "$bin" ./clusterdemo)
  fi
  [ -x "$bin" ] || die "$bin is not executable"

  # The site configuration: deploy/nginx.conf with loopback ports.
  local -a subst=(-e "s/listen 80;/listen 127.0.0.1:$lb_port;/")
  local i
  for i in "${!names[@]}"; do subst+=(-e "s/\\b${names[$i]}:3000\\b/127.0.0.1:${ports[$i]}/g"); done
  sed "${subst[@]}" "$CONF" >"$RUN/nginx/site.conf"
  # The main configuration around it: everything nginx writes stays in the run directory.
  mkdir -p "$RUN/nginx/tmp"
  cat >"$RUN/nginx/nginx.conf" <<EOF
# Generated by deploy/cluster.sh; the site is deploy/nginx.conf with loopback ports.
worker_processes 1;
pid $RUN/nginx/nginx.pid;
error_log $LOGS/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log $LOGS/nginx-access.log;
    client_body_temp_path $RUN/nginx/tmp/body;
    proxy_temp_path $RUN/nginx/tmp/proxy;
    fastcgi_temp_path $RUN/nginx/tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx/tmp/uwsgi;
    scgi_temp_path $RUN/nginx/tmp/scgi;
    include $RUN/nginx/site.conf;
}
EOF
  local -a nginx_args=(-p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e "$LOGS/nginx-error.log")
  env -u NGINX "$nginx" -t -q "${nginx_args[@]}" || die "nginx rejects $RUN/nginx/nginx.conf"

  cat >"$RUN/cluster.env" <<EOF
LB_PORT=$lb_port
REDIS_PORT=$redis_port
REDIS_KEY=$key
NODES="${names[*]}"
NODE_PORTS="${ports[*]}"
BIN="$bin"
EOF

  # From here on, a failure stops what was started.
  trap 'log "up failed; stopping what started"; cmd_down >/dev/null 2>&1 || true' EXIT

  start redis "$(basename "$redis")" "$redis" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
  wait_until 10 redis port_open "$redis_port"

  for i in "${!names[@]}"; do start_node "$bin" "${names[$i]}" "${ports[$i]}" "$redis_port" "$key"; done
  for i in "${!names[@]}"; do
    wait_until 20 "${names[$i]}" "$bin" -healthcheck -addr "127.0.0.1:${ports[$i]}"
  done

  # (nginx reads sockets to inherit from $NGINX: never pass one on)
  start nginx nginx env -u NGINX "$nginx" "${nginx_args[@]}" -g "daemon off;"
  wait_until 10 nginx "$bin" -healthcheck -addr "127.0.0.1:$lb_port"
  trap - EXIT

  log "redis  redis://127.0.0.1:$redis_port/0 (key $key)"
  for i in "${!names[@]}"; do log "${names[$i]}  http://127.0.0.1:${ports[$i]}"; done
  log "nginx  http://127.0.0.1:$lb_port   <- open this (pin a node with ?node=${names[0]})"
  log "logs   $LOGS"
}

cmd_down() {
  [ -d "$PIDS" ] || { log "nothing runs in $RUN"; return 0; }
  local -a names=()
  local f n failed=0
  for f in "$PIDS"/*.pid; do
    [ -e "$f" ] || continue
    n="$(basename "$f" .pid)"
    case "$n" in redis | nginx) ;; *) names+=("$n") ;; esac
  done
  # Front to back: no new traffic, then the nodes (they disconnect their clients and leave
  # the cluster), then Redis.
  stop 5 nginx || failed=1
  if [ "${#names[@]}" -gt 0 ]; then stop 15 "${names[@]}" || failed=1; fi
  stop 5 redis || failed=1
  [ "$failed" = 0 ] || die "some processes had to be killed"
  log "stopped (logs in $LOGS)"
}

cmd_status() {
  [ -f "$RUN/cluster.env" ] || { log "nothing started in $RUN"; return 1; }
  # shellcheck disable=SC1091
  . "$RUN/cluster.env"
  local -a names ports
  read -r -a names <<<"$NODES"
  read -r -a ports <<<"$NODE_PORTS"
  local ok=0 i
  row() { # row NAME ADDRESS
    if alive "$PIDS/$1.pid"; then
      printf '%-8s %-8s %-7s %s\n' "$1" "$(pid_of "$PIDS/$1.pid")" running "$2"
    else
      printf '%-8s %-8s %-7s %s\n' "$1" - stopped "$2"
      ok=1
    fi
  }
  printf '%-8s %-8s %-7s %s\n' NAME PID STATE ADDRESS
  row redis "redis://127.0.0.1:$REDIS_PORT/0"
  for i in "${!names[@]}"; do row "${names[$i]}" "http://127.0.0.1:${ports[$i]}"; done
  row nginx "http://127.0.0.1:$LB_PORT"
  return "$ok"
}

# node_index NAME: the index of node NAME in the started topology ($NODES of cluster.env).
node_index() {
  local -a names
  read -r -a names <<<"$NODES"
  local i
  for i in "${!names[@]}"; do
    if [ "${names[$i]}" = "$1" ]; then printf '%s\n' "$i"; return 0; fi
  done
  die "no node $1 in this topology (nodes: $NODES)"
}

cmd_stop_node() {
  [ -f "$RUN/cluster.env" ] || die "nothing started in $RUN"
  # shellcheck disable=SC1091
  . "$RUN/cluster.env"
  node_index "$1" >/dev/null
  alive "$PIDS/$1.pid" || { log "$1 is not running"; return 0; }
  stop 15 "$1" || die "$1 had to be killed"
  log "$1 stopped"
}

cmd_start_node() {
  [ -f "$RUN/cluster.env" ] || die "nothing started in $RUN"
  # shellcheck disable=SC1091
  . "$RUN/cluster.env"
  local i port
  i="$(node_index "$1")"
  ! alive "$PIDS/$1.pid" || die "$1 is already running"
  local -a ports
  read -r -a ports <<<"$NODE_PORTS"
  port="${ports[$i]}"
  # Keep the log of the node's previous run.
  if [ -f "$LOGS/$1.log" ]; then mv -f "$LOGS/$1.log" "$LOGS/$1.prev.log"; fi
  start_node "$BIN" "$1" "$port" "$REDIS_PORT" "$REDIS_KEY"
  wait_until 20 "$1" "$BIN" -healthcheck -addr "127.0.0.1:$port"
  log "$1  http://127.0.0.1:$port"
}

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  stop) [ $# -eq 2 ] || usage; cmd_stop_node "$2" ;;
  start) [ $# -eq 2 ] || usage; cmd_start_node "$2" ;;
  restart) [ $# -eq 2 ] || usage; cmd_stop_node "$2"; cmd_start_node "$2" ;;
  *) usage ;;
esac
