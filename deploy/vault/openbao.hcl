# OpenBao server for docker compose: one node, integrated raft storage (OpenBao 2.x has no
# `file` storage). Mounted at /openbao/config/openbao.hcl; the image's entrypoint adds
# -config=/openbao/config. For HA run 3 nodes with retry_join (or the OpenBao Helm chart
# with server.ha.raft.enabled on Kubernetes).
#
# First start: the server comes up sealed and uninitialised. Once:
#   docker compose exec openbao bao operator init        # keep the unseal keys and root token safe
#   docker compose exec openbao bao operator unseal      # x threshold, after every restart
# (or configure auto-unseal: a `seal` stanza for your KMS / the static seal), then run
# deploy/vault/setup-approle.sh with the root token to create the Keyrail mount, policies and roles.

storage "raft" {
  path    = "/openbao/file"
  node_id = "openbao-1"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  # Production: terminate TLS here (tls_cert_file / tls_key_file) and give the services
  # KEYRAIL_VAULT_ADDR=https://... plus VAULT_CACERT (read by hvac) for a private CA.
  tls_disable = true
}

api_addr      = "http://openbao:8200"
cluster_addr  = "http://openbao:8201"
ui            = false
log_level     = "warn"
