# Policy of the provider workers: read credentials (any version) to call the upstream.
# Nothing else: no write, no list, no delete, no metadata. Workers cache each
# (reference, version) in memory, so Vault sees one read per credential version per process.
#
# KV v2 layout: <mount>/data/integrations/<org_id>/<provider_slug>; mount `keyrail`
# (KEYRAIL_VAULT_KV_MOUNT); setup-approle.sh rewrites the prefix for another mount.

path "keyrail/data/integrations/*" {
  capabilities = ["read"]
}
