-- Source networks (CIDR, space-separated) an application's credentials and tokens are accepted from; empty: any.
ALTER TABLE clients ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '';
