#!/usr/bin/env bash
# Quickstart: install, start a control plane in the background, apply the demo, show it.
# Today this runs the control plane only (node agents and labctl come with their issues).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
DATA="${KUBE_LITE_DATA:-/var/lib/kube-lite/quickstart}"
mkdir -p "$DATA"
if [[ -f "$DATA/controlplane.pid" ]] && kill -0 "$(cat "$DATA/controlplane.pid")" 2>/dev/null; then
  echo "control plane already running (pid $(cat "$DATA/controlplane.pid"))"
else
  rm -f "$DATA/admin.kubeconfig"
  nohup controlplane --data-dir "$DATA" >"$DATA/controlplane.log" 2>&1 &
  echo $! >"$DATA/controlplane.pid"
  printf 'starting control plane'
  for _ in $(seq 1 120); do
    [[ -f "$DATA/admin.kubeconfig" ]] && break
    kill -0 "$(cat "$DATA/controlplane.pid")" 2>/dev/null || { echo; tail -20 "$DATA/controlplane.log"; exit 1; }
    printf '.'; sleep 0.5
  done
  echo
fi
export KUBECONFIG="$DATA/admin.kubeconfig"
kubectl-lite apply -f manifests/demo.yaml
kubectl-lite get deployments,services -o wide
echo
echo "kubeconfig: $KUBECONFIG   (stop with: kill \$(cat $DATA/controlplane.pid))"
