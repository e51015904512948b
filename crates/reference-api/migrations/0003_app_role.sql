-- 0003: the role the reference target's requests run as. Row-level security
-- does not apply to superusers nor to roles with BYPASSRLS, so the target
-- must not query as the role that migrates: every pooled connection does
-- `SET ROLE convoy_app` once, and every request's transaction sets its
-- tenant with `set_config('app.tenant', $1, true)`. convoy_app cannot log
-- in, owns nothing, and may only read and write the two tenant tables (the
-- policies of 0001 confine it to the transaction's tenant); foreign keys are
-- checked with the privileges of the referenced table's owner, so it needs
-- nothing on `tenants`.
--
-- Roles belong to the cluster, not to the database: another database of the
-- same server may have created it already (even concurrently).

DO $$
BEGIN
    CREATE ROLE convoy_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- Whoever migrates must be able to SET ROLE to it (superusers always can).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT convoy_app TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO convoy_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, order_adjustments TO convoy_app;
GRANT USAGE ON SEQUENCE orders_id_seq, order_adjustments_id_seq TO convoy_app;
