#!/usr/bin/env bash
# Install kube-lite's system and Python dependencies on Debian 12 (run as root).
#   deploy/setup.sh          runtime dependencies
#   deploy/setup.sh --test   also what the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
pkgs=(etcd-server etcd-client nftables iptables iproute2 conntrack busybox-static util-linux python3-pip python3-venv ca-certificates)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(docker-registry skopeo runc)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's etcd-server package starts a system etcd on 2379; kube-lite runs its own etcd, so the
# packaged service is not needed (and would hold the default ports).
if command -v systemctl >/dev/null && systemctl is-enabled etcd >/dev/null 2>&1; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
PY="${PYTHON:-python3}"
extra=""
[[ "${1:-}" == "--test" ]] && extra="[test]"
"$PY" -m pip install -q --root-user-action=ignore --disable-pip-version-check -e ".${extra}"
"$PY" -c "import controlplane, apimachinery" >/dev/null
