#!/usr/bin/env bash
# Two `sharplm serve` replicas behind nginx (Debian package) on loopback: the scale-out of docs/DEPLOY.md, checked.
# Starts the replicas on two ports, nginx in front of them on a third, sends requests (plain and streaming) through
# nginx, and checks that both replicas served some (their /metrics). Everything it starts, it stops.
#   usage: scripts/serve-replicas-nginx.sh [CLI_DLL] [MODEL]
# Prints 'ok: ...' and exits 0 on success.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cli="${1:-$root/src/SharpLM.Cli/bin/Release/net10.0/SharpLM.Cli.dll}"
model="${2:-$root/models/default.gguf}"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is not installed (Debian: apt-get install nginx)"; exit 2; }
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -f "$cli" ] || { echo "build the CLI first: $cli is missing"; exit 2; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
a=$(free_port); b=$(free_port); front=$(free_port)

for port in "$a" "$b"; do
  dotnet "$cli" serve --model "$model" --port "$port" --parallel 4 --context 256 > "$work/replica-$port.log" 2>&1 &
  pids+=($!)
done
for port in "$a" "$b"; do
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "replica on $port did not start:"; cat "$work/replica-$port.log"; exit 1; }
done

mkdir -p "$work/tmp"
cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 256; }
http {
  access_log $work/access.log;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  upstream sharplm {
    least_conn;                      # long generations: send new requests to the least busy replica
    server 127.0.0.1:$a max_fails=2 fail_timeout=5s;
    server 127.0.0.1:$b max_fails=2 fail_timeout=5s;
  }
  server {
    listen 127.0.0.1:$front;
    client_max_body_size 8m;
    location / {
      proxy_pass http://sharplm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;           # stream tokens as they come (the server also sends X-Accel-Buffering: no)
      proxy_read_timeout 600s;
      proxy_next_upstream error timeout http_503;
    }
  }
}
EOF
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$front/health" >/dev/null && break; sleep 0.1; done

url="http://127.0.0.1:$front"
clients=()
for i in $(seq 1 8); do
  curl -sf "$url/v1/chat/completions" -H 'Content-Type: application/json' \
    -d "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"request $i\"}],\"max_tokens\":8}" > "$work/r$i.json" &
  clients+=($!)
done
for c in "${clients[@]}"; do wait "$c" || true; done
for i in $(seq 1 8); do grep -q '"finish_reason"' "$work/r$i.json" || { echo "request $i failed: $(cat "$work/r$i.json")"; exit 1; }; done
stream=$(curl -sfN "$url/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model":"default","messages":[{"role":"user","content":"stream"}],"max_tokens":8,"stream":true}')
echo "$stream" | grep -q 'data: \[DONE\]' || { echo "streaming through nginx failed: $stream"; exit 1; }

served() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^sharplm_requests_total\{endpoint="chat",status="200"\}/ {print $2}'; }
sa=$(served "$a"); sb=$(served "$b")
[ -n "$sa" ] && [ -n "$sb" ] || { echo "both replicas should have served chat requests: $a served '${sa:-0}', $b served '${sb:-0}'"; exit 1; }
echo "ok: 9 chat requests through nginx on :$front, replica :$a served $sa, replica :$b served $sb"
