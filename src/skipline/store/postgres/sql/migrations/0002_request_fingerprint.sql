-- The fingerprint of the request that submitted an order under an idempotency key (SHA-256
-- hex of its tier, payload and duration): a replay with another fingerprint reuses the key for
-- a different request and is refused. NULL for orders without a key, and for those stored
-- before this migration (a replay of those is believed).
ALTER TABLE orders ADD COLUMN fingerprint text COLLATE "C";
