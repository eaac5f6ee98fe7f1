#!/usr/bin/env bash
# Quickstart: install, bring up a 2-node lab (network-namespace "VMs" on this machine), apply the
# demo (an HTTP server Deployment with readiness probes behind a Service) and show it running.
# Run as root on Debian 12. Tear down with: labctl down --name demo
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
LAB="${KLAB_NAME:-demo}"
labctl up --name "$LAB" --nodes 2
export KUBECONFIG="$(labctl kubeconfig --name "$LAB")"
kubectl-lite apply -f manifests/demo.yaml
echo "waiting for the demo to roll out..."
kubectl-lite rollout status deployment/web --timeout=180s
kubectl-lite get pods -o wide
echo
# A request through the Service, sent from inside the first node (its ClusterIP is only
# reachable from the lab's nodes).
CLUSTER_IP="$(kubectl-lite get service web -o jsonpath='{.spec.clusterIP}')"
echo "requests to http://$CLUSTER_IP/ (Service web) from node n1:"
for _ in 1 2 3 4; do
  # busybox nc, not wget: Debian's busybox-static wget crashes on this platform.
  labctl exec --name "$LAB" n1 -- sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | busybox nc -w 5 $CLUSTER_IP 80 | tail -1"
done
echo
echo "kubeconfig: $KUBECONFIG   (tear down with: labctl down --name $LAB)"
echo "next: break it on purpose with the exercises in docs/labs.md (use --name $LAB with labctl)"
