-- 0001: tenants, orders (idempotency key unique per tenant) and the order
-- ledger, every tenant table behind row-level security. The tenant of a
-- transaction is `SET LOCAL app.tenant = '...'`; without it no row is visible.

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL
);

CREATE TABLE orders (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id),
    idempotency_key text,
    reference       text NOT NULL,
    status          text NOT NULL DEFAULT 'created',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE order_adjustments (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    order_id    bigint NOT NULL REFERENCES orders (id),
    kind        text NOT NULL,
    amount_cents bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders FORCE ROW LEVEL SECURITY;
CREATE POLICY orders_tenant ON orders
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));

ALTER TABLE order_adjustments ENABLE ROW LEVEL SECURITY;
ALTER TABLE order_adjustments FORCE ROW LEVEL SECURITY;
CREATE POLICY order_adjustments_tenant ON order_adjustments
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));
