"""The admin API (`/admin/v1`), one module per resource; `routes.router` has every route.

Commands become config events on KEYRAIL_CONFIG; credentials go to Vault only. Every route goes
through the one preamble in command.py and is governed by one rule of the RBAC table (rbac.py).
"""
