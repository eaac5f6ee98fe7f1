#!/usr/bin/env bash
# Install kube-lite on a real machine (Debian 12, as root) from this checkout.
#
#   deploy/install.sh server [--advertise-address IP] [--bind-address IP] [--port 6443]
#   deploy/install.sh agent --server https://IP:6443 --token ID.SECRET [--ca-cert-hash sha256:HEX]
#                           [--node-ip IP] [--node-name NAME]
#   (server also takes --token ID.SECRET to create that join token instead of a random one, so
#   machines provisioned together can share it up front: see Vagrantfile and deploy/cloud-init/)
#
# server: installs the dependencies, a systemd unit for the control plane (API server with an
#   embedded etcd, controllers, scheduler), starts it, waits until it is ready and prints the
#   command that joins an agent (a bootstrap token valid for --token-ttl, default 24h).
# agent: installs the dependencies, joins with the token (TLS bootstrap: the node makes its own
#   key, the control plane signs a client certificate for system:node:NAME; the token never
#   becomes the node's credential), installs a systemd unit for the node agent and starts it.
#   The server's CA is trusted only if the control plane signed cluster-info with the token and,
#   with --ca-cert-hash, if its public key has that hash.
#   The node IP is --node-ip, or the source address of the route to the server: never just the
#   first interface.
#
# Common options:
#   --data-dir DIR   state (default /var/lib/kube-lite/server or /var/lib/kube-lite/agent)
#   --init systemd|none
#                    systemd (default when systemd runs) installs and starts units; none writes
#                    the unit and env files but starts nothing (containers, network-namespace labs)
#   --root DIR       prefix for everything written under /etc (default /)
#   --skip-deps      do not run deploy/setup.sh (dependencies already installed)
set -euo pipefail

ROLE="${1:-}"
[[ "$ROLE" == "server" || "$ROLE" == "agent" ]] || {
  echo "usage: $0 server|agent [options] (see the top of this file)" >&2; exit 2; }
shift
REPO="$(cd "$(dirname "$0")/.." && pwd)"

SERVER="" TOKEN="" CA_HASH="" NODE_IP="" NODE_NAME="$(hostname)" ROOT="/" SKIP_DEPS=0
ADVERTISE="" BIND="0.0.0.0" PORT=6443 TOKEN_TTL="24h" DATA_DIR="" INIT=""
EXTRA_ARGS=()
die() { echo "install.sh: $*" >&2; exit 1; }
while (($#)); do
  case "$1" in
    --server) SERVER="$2"; shift 2 ;;
    --token) TOKEN="$2"; shift 2 ;;
    --ca-cert-hash) CA_HASH="$2"; shift 2 ;;
    --node-ip) NODE_IP="$2"; shift 2 ;;
    --node-name) NODE_NAME="$2"; shift 2 ;;
    --advertise-address) ADVERTISE="$2"; shift 2 ;;
    --bind-address) BIND="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --token-ttl) TOKEN_TTL="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --init) INIT="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    --skip-deps) SKIP_DEPS=1; shift ;;
    --) shift; EXTRA_ARGS=("$@"); break ;;
    *) die "unknown option $1" ;;
  esac
done
[[ $EUID -eq 0 ]] || die "run as root (the agent needs namespaces, mounts, cgroups; both install units)"
if [[ -z "$INIT" ]]; then
  if [[ -d /run/systemd/system ]]; then INIT=systemd; else INIT=none; fi
fi
[[ "$INIT" == systemd || "$INIT" == none ]] || die "--init takes systemd or none"
ETC="${ROOT%/}/etc/kube-lite"
UNITS="${ROOT%/}/etc/systemd/system"

if ((SKIP_DEPS == 0)); then
  echo "==> installing dependencies"
  bash "$REPO/deploy/setup.sh"
fi
bin() { command -v "$1" || die "$1 is not installed (run without --skip-deps)"; }

# write_unit NAME DESCRIPTION EXEC [KILLMODE]: a systemd unit plus its env file.
write_unit() {
  local name="$1" desc="$2" exec="$3" killmode="${4:-control-group}"
  mkdir -p "$UNITS" "$ETC"
  cat >"$UNITS/$name.service" <<EOF
[Unit]
Description=$desc
Documentation=file://$REPO/docs/architecture.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=$exec
Restart=always
RestartSec=2
KillMode=$killmode
Delegate=yes
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
EOF
  echo "    wrote $UNITS/$name.service"
}

start_unit() {
  if [[ "$INIT" == systemd ]]; then
    systemctl daemon-reload
    systemctl enable --now "$1" >/dev/null
    echo "    started $1"
  else
    echo "    --init none: not started; run: $(sed -n 's/^ExecStart=//p' "$UNITS/$1.service")"
  fi
}

if [[ "$ROLE" == server ]]; then
  DATA_DIR="${DATA_DIR:-/var/lib/kube-lite/server}"
  if [[ -z "$ADVERTISE" ]]; then
    # The address other machines reach us at: the source address of the default route.
    ADVERTISE="$(ip -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p')"
    [[ -n "$ADVERTISE" ]] || die "cannot tell this machine's address; pass --advertise-address"
  fi
  echo "==> control plane (advertised at https://$ADVERTISE:$PORT)"
  write_unit kube-lite-controlplane "kube-lite control plane" \
    "$(bin controlplane) --data-dir $DATA_DIR --bind-address $BIND --advertise-address $ADVERTISE --port $PORT --tls-san $ADVERTISE ${EXTRA_ARGS[*]:-}"
  start_unit kube-lite-controlplane
  if [[ "$INIT" == systemd ]]; then
    echo "==> waiting for the API server"
    for _ in $(seq 1 120); do
      [[ -s "$DATA_DIR/admin.kubeconfig" ]] && curl -fsk "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
      sleep 1
    done
    curl -fsk "https://127.0.0.1:$PORT/readyz" >/dev/null || die "the control plane did not become ready; see: journalctl -u kube-lite-controlplane"
    echo "==> admin kubeconfig: $DATA_DIR/admin.kubeconfig"
    echo "==> join agents with (token valid for $TOKEN_TTL):"
    "$(bin controlplane)" token create --kubeconfig "$DATA_DIR/admin.kubeconfig" --ttl "$TOKEN_TTL" \
      ${TOKEN:+--token "$TOKEN"} --print-join-command
  fi
  exit 0
fi

# ---- agent
[[ -n "$SERVER" && -n "$TOKEN" ]] || die "agent needs --server and --token (and, to pin the CA, --ca-cert-hash: all printed by 'install.sh server')"
DATA_DIR="${DATA_DIR:-/var/lib/kube-lite/agent}"
if [[ -z "$NODE_IP" ]]; then
  host="${SERVER#*://}"; host="${host%%/*}"; host="${host%:*}"; host="${host#[}"; host="${host%]}"
  ip="$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR==1{print $1}')"
  [[ -n "$ip" ]] || die "cannot resolve $host; pass --node-ip"
  # The address this machine uses to reach the server is the one the cluster can reach it at.
  NODE_IP="$(ip -o route get "$ip" 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p')"
  [[ -n "$NODE_IP" ]] || die "no route to the server $ip; pass --node-ip"
fi
echo "==> joining $SERVER as node $NODE_NAME ($NODE_IP)"
mkdir -p "$DATA_DIR"
"$(bin nodeagent)" join --server "$SERVER" --token "$TOKEN" ${CA_HASH:+--ca-cert-hash "$CA_HASH"} \
  --node-name "$NODE_NAME" --kubeconfig "$DATA_DIR/kubeconfig"
# KillMode=process: restarting the agent must not kill the pods' containers (they belong to the
# runtime's spawner, which the restarted agent adopts).
write_unit kube-lite-nodeagent "kube-lite node agent" \
  "$(bin nodeagent) --kubeconfig $DATA_DIR/kubeconfig --node-name $NODE_NAME --node-ip $NODE_IP --data-dir $DATA_DIR ${EXTRA_ARGS[*]:-}" \
  process
start_unit kube-lite-nodeagent
echo "==> node $NODE_NAME installed; on the server: kubectl get nodes"
