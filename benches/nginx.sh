# shellcheck shell=bash
# nginx as the benchmarks' static-file ceiling (benches/e2e/run.sh,
# benches/hot_path.sh): one configuration, so both measure the same nginx.

# write_nginx_config FILE ROOT ADDR ACCEPT: nginx serving ROOT's files on
# ADDR, in the foreground (stopped by its PID), its access log on (beside
# FILE's ROOT, ROOT.access.log), manifests under
# /v2/bench/manifest/manifests/ with the media type ACCEPT, `/v2/`
# answering 200.
write_nginx_config() {
  cat >"$1" <<CONF
daemon off;
user root;
worker_processes auto;
pid $1.pid;
events { worker_connections 4096; }
http {
  access_log $2.access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  server {
    listen $3;
    root $2;
    location = /v2/ { return 200 '{}'; }
    location /v2/bench/manifest/manifests/ { default_type $4; }
  }
}
CONF
}
