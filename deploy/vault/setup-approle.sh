#!/usr/bin/env bash
# One-time (idempotent) Vault / OpenBao setup for Keyrail in production:
#   - KV v2 secrets engine at $KEYRAIL_VAULT_KV_MOUNT (default `keyrail`)
#   - policies keyrail-ingress (write-only credentials) and keyrail-worker (read-only)
#   - AppRole auth with roles keyrail-ingress and keyrail-worker (short-lived tokens)
#   - prints both role ids; with --env-dir DIR it also issues one secret id per role and writes
#     DIR/approle-ingress.env and DIR/approle-worker.env (mode 0600) for docker compose.
#
# Router and audit get no role: they never talk to Vault.
#
# Usage (run with an admin token, e.g. the root token right after `bao operator init`):
#   export BAO_ADDR=https://openbao.example:8200 BAO_TOKEN=...   # or VAULT_ADDR / VAULT_TOKEN
#   deploy/vault/setup-approle.sh [--env-dir deploy/env]
#
# Tunables (environment):
#   KEYRAIL_VAULT_CLI        bao | vault            (default: whichever is on PATH, bao first)
#   KEYRAIL_VAULT_KV_MOUNT   KV v2 mount path        (default: keyrail; must match the services)
#   TOKEN_TTL / TOKEN_MAX_TTL  login token lifetime  (default: 15m / 1h)
#   SECRET_ID_TTL            secret id lifetime      (default: 0 = no expiry; e.g. 720h + rotation)
#   BOUND_CIDRS              comma-separated CIDRs allowed to log in / use tokens (default: none)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --env-dir) env_dir="${2:?--env-dir needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

cli="${KEYRAIL_VAULT_CLI:-}"
if [[ -z "$cli" ]]; then
  if command -v bao >/dev/null 2>&1; then cli=bao
  elif command -v vault >/dev/null 2>&1; then cli=vault
  else echo "neither bao nor vault is on PATH (set KEYRAIL_VAULT_CLI)" >&2; exit 1
  fi
fi

# Accept either naming; export both so the chosen CLI finds them.
addr="${BAO_ADDR:-${VAULT_ADDR:-}}"
token="${BAO_TOKEN:-${VAULT_TOKEN:-}}"
if [[ -z "$addr" ]]; then echo "set BAO_ADDR (or VAULT_ADDR)" >&2; exit 1; fi
export BAO_ADDR="$addr" VAULT_ADDR="$addr"
if [[ -n "$token" ]]; then export BAO_TOKEN="$token" VAULT_TOKEN="$token"; fi

mount="${KEYRAIL_VAULT_KV_MOUNT:-keyrail}"
token_ttl="${TOKEN_TTL:-15m}"
token_max_ttl="${TOKEN_MAX_TTL:-1h}"
secret_id_ttl="${SECRET_ID_TTL:-0}"
bound_cidrs="${BOUND_CIDRS:-}"

v() { "$cli" "$@"; }

echo "== $cli at $addr, KV v2 mount '$mount'"

# 1. KV v2 at the mount (sys/mounts/<path> answers only when the mount exists).
if v read -format=json "sys/mounts/$mount" >/dev/null 2>&1; then
  echo "   KV mount '$mount' exists"
else
  v secrets enable -path="$mount" -version=2 kv
fi

# 2. Policies, with the mount prefix rewritten when it is not `keyrail`.
for name in keyrail-ingress keyrail-worker; do
  sed -e "s#^path \"keyrail/#path \"${mount}/#" "$here/$name.hcl" | v policy write "$name" -
done

# 3. AppRole auth and one role per service that needs Vault.
if ! v auth list -format=json | grep -q '"approle/"'; then
  v auth enable approle
fi
cidr_args=()
if [[ -n "$bound_cidrs" ]]; then
  cidr_args=("token_bound_cidrs=$bound_cidrs" "secret_id_bound_cidrs=$bound_cidrs")
fi
for name in keyrail-ingress keyrail-worker; do
  # token_num_uses=0: a worker token serves many reads; secret_id_num_uses=0: every pod restart logs in.
  v write "auth/approle/role/$name" \
    token_policies="$name" \
    token_ttl="$token_ttl" \
    token_max_ttl="$token_max_ttl" \
    token_num_uses=0 \
    secret_id_ttl="$secret_id_ttl" \
    secret_id_num_uses=0 \
    ${cidr_args[@]+"${cidr_args[@]}"} >/dev/null
  echo "   role $name: policy $name, token ttl $token_ttl (max $token_max_ttl)"
done

# 4. Role ids (not secret on their own; they identify the role).
ingress_role_id="$(v read -field=role_id auth/approle/role/keyrail-ingress/role-id)"
worker_role_id="$(v read -field=role_id auth/approle/role/keyrail-worker/role-id)"
echo
echo "KEYRAIL_VAULT_ROLE_ID for the ingress: $ingress_role_id"
echo "KEYRAIL_VAULT_ROLE_ID for the workers: $worker_role_id"

# 5. Optional: issue secret ids straight into compose env files (never printed).
if [[ -n "$env_dir" ]]; then
  mkdir -p "$env_dir"
  umask 077
  for pair in "ingress:$ingress_role_id" "worker:$worker_role_id"; do
    service="${pair%%:*}"
    role_id="${pair#*:}"
    secret_id="$(v write -f -field=secret_id "auth/approle/role/keyrail-$service/secret-id")"
    file="$env_dir/approle-$service.env"
    printf 'KEYRAIL_VAULT_ROLE_ID=%s\nKEYRAIL_VAULT_SECRET_ID=%s\n' "$role_id" "$secret_id" >"$file"
    chmod 600 "$file"
    echo "wrote $file"
  done
else
  echo
  echo "Issue a secret id per deployment (store it as KEYRAIL_VAULT_SECRET_ID, e.g. in a Kubernetes Secret):"
  echo "  $cli write -f -field=secret_id auth/approle/role/keyrail-ingress/secret-id"
  echo "  $cli write -f -field=secret_id auth/approle/role/keyrail-worker/secret-id"
fi
