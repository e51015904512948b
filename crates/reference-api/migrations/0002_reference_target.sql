-- 0002: what the reference target (`convoy target --database-url`) stores
-- beyond 0001. Orders get the public id the API answers with, the plan
-- (pickup, dropoff, stops as JSON), the lifecycle (driver, route) and the
-- first answer to their Idempotency-Key (fingerprint of the request body,
-- status, body), so that a replay returns it verbatim and a different body
-- is refused. The key stays unique per tenant (0001): `INSERT ... ON
-- CONFLICT (tenant_id, idempotency_key) DO NOTHING` is how concurrent
-- replays create one order. Ledger rows get a public id and a currency.
-- Every new column is nullable or has a default, so rows written by hand
-- (as the tests do) stay valid.

ALTER TABLE orders
    ALTER COLUMN reference DROP NOT NULL,
    ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN pickup jsonb,
    ADD COLUMN dropoff jsonb,
    ADD COLUMN stops jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN weight_kg double precision,
    ADD COLUMN created_by text,
    ADD COLUMN driver_id text,
    ADD COLUMN route jsonb,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN idempotency_fingerprint bytea,
    ADD COLUMN idempotency_status smallint,
    ADD COLUMN idempotency_response text,
    ADD CONSTRAINT orders_public_id_key UNIQUE (public_id),
    ADD CONSTRAINT orders_status_check
        CHECK (status IN ('created', 'accepted', 'routed', 'delivered'));

-- Dispatch counts a driver's active and delivered orders.
CREATE INDEX orders_driver_idx ON orders (tenant_id, driver_id) WHERE driver_id IS NOT NULL;

ALTER TABLE order_adjustments
    ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN currency text NOT NULL DEFAULT 'EUR',
    ADD CONSTRAINT order_adjustments_public_id_key UNIQUE (public_id);

CREATE INDEX order_adjustments_order_idx ON order_adjustments (order_id);
