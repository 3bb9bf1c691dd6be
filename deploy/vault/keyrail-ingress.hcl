# Policy of the ingress (admin API): it stores and rotates integration credentials,
# and can never read them back (spec §4/§7: after saving, a credential can only be replaced).
#
# KV v2 layout: <mount>/data/integrations/<org_id>/<provider_slug>. The mount is `keyrail`
# (KEYRAIL_VAULT_KV_MOUNT); setup-approle.sh rewrites the prefix when you choose another one.
# `*` is a prefix glob, so it covers the nested <org_id>/<provider_slug> paths.

# Write a new version (first save: create; rotation: update). No "read": a KV v2 write
# answers with version metadata only, never with the stored data.
path "keyrail/data/integrations/*" {
  capabilities = ["create", "update"]
}

# Per-secret metadata (max_versions, custom_metadata, delete_version_after). Write-only too:
# no "read" and no "list", so the ingress cannot even enumerate which credentials exist.
path "keyrail/metadata/integrations/*" {
  capabilities = ["create", "update"]
}
