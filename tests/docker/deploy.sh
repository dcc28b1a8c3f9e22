# shellcheck shell=bash
# deploy/: each file checked by the checker this machine has.
#   compose.yaml      `docker-compose config` (and it refuses to run without
#                     the store's credentials)
#   registry.service  `systemd-analyze verify`, with ExecStart pointed at the
#                     binary under test (verify wants an existing program)
#   kubernetes.yaml   no API server here for `kubectl --dry-run`; its
#                     structure is checked with Python's yaml instead
# Sourced by run.sh.

part_deploy() {
  local d="$REPO_ROOT/deploy" out unit
  log "---- deploy/: compose, systemd, Kubernetes"
  if command -v docker-compose >/dev/null; then
    check "docker-compose config of deploy/compose.yaml" \
      env AWS_ACCESS_KEY_ID=test-key AWS_SECRET_ACCESS_KEY=test-secret docker-compose -f "$d/compose.yaml" config -q
    out="$(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY docker-compose -f "$d/compose.yaml" config 2>&1)" &&
      fail "compose refuses to run without the store's credentials" "$out" ||
      check_contains "compose refuses to run without the store's credentials" "$out" "set AWS_ACCESS_KEY_ID"
    out="$(AWS_ACCESS_KEY_ID=test-key AWS_SECRET_ACCESS_KEY=test-secret docker-compose -f "$d/compose.yaml" config 2>&1)"
    check_eq "compose: three registries, each with its own cache volume" \
      "cache-1 cache-2 cache-3" \
      "$(/usr/bin/python3 -c 'import sys, yaml
c = yaml.safe_load(sys.stdin)
print(" ".join(sorted(v.split(":")[0] for n, s in c["services"].items() if n.startswith("registry-")
                      for v in s.get("volumes", []) if ":/var/cache/registry" in v)))' <<<"$out" 2>&1)"
    check_eq "compose: all three on the one S3 store" 1 \
      "$(grep -o 'REGISTRY_STORAGE: s3://[^ ]*' <<<"$out" | sort -u | wc -l)"
  else
    skip "compose" "no docker-compose command"
  fi

  if command -v systemd-analyze >/dev/null; then
    unit="$RUN_DIR/registry.service"
    sed "s#^ExecStart=/usr/local/bin/registry #ExecStart=$REGISTRY_BIN #" "$d/registry.service" >"$unit"
    check_eq "the unit runs /usr/local/bin/registry serve" "ExecStart=/usr/local/bin/registry serve" \
      "$(grep '^ExecStart=' "$d/registry.service")"
    out="$(systemd-analyze verify --man=no "$unit" 2>&1)" && check_eq "systemd-analyze verify deploy/registry.service: no complaint" "" "$out" ||
      fail "systemd-analyze verify deploy/registry.service" "$out"
  else
    skip "systemd" "no systemd-analyze command"
  fi

  if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    check_eq "kubernetes.yaml: headless Service; DaemonSet with hostPort 5000, hostPath cache, user 10001, selector matching" \
      "Service:None DaemonSet:5000:/var/cache/registry:10001:match" \
      "$(/usr/bin/python3 - "$d/kubernetes.yaml" <<'EOF' 2>&1
import sys, yaml
out = []
for doc in yaml.safe_load_all(open(sys.argv[1])):
    kind = doc["kind"]
    if kind == "Service":
        out.append("Service:%s" % doc["spec"]["clusterIP"])
        svc_selector = doc["spec"]["selector"]
    elif kind == "DaemonSet":
        pod = doc["spec"]["template"]
        c = pod["spec"]["containers"][0]
        port = [p["hostPort"] for p in c["ports"] if p.get("hostPort")][0]
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        cache = [v for v in pod["spec"]["volumes"] if "hostPath" in v][0]
        match = doc["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        out.append("DaemonSet:%s:%s:%s:%s" % (port, mounts[cache["name"]], pod["spec"]["securityContext"]["runAsUser"],
                                               "match" if match and svc_selector.items() <= pod["metadata"]["labels"].items() else "mismatch"))
print(" ".join(out))
EOF
)"
    check_eq "kubernetes.yaml: probes on the health endpoints of the http port" \
      "liveness:/livez:http readiness:/readyz:http startup:/startupz:http" \
      "$(/usr/bin/python3 - "$d/kubernetes.yaml" <<'EOF' 2>&1
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc["kind"] == "DaemonSet":
        c = doc["spec"]["template"]["spec"]["containers"][0]
        print(" ".join("%s:%s:%s" % (k, c[k + "Probe"]["httpGet"]["path"], c[k + "Probe"]["httpGet"]["port"])
                       for k in ("liveness", "readiness", "startup")))
EOF
)"
    skip "kubectl" "no Kubernetes API server here for kubectl apply --dry-run (structure checked above)"
  else
    skip "kubernetes" "no Python yaml module (/usr/bin/python3, python3-yaml)"
  fi
}
