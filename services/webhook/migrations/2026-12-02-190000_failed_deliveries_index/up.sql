-- Only recovery looks deliveries up by endpoint and time, and only failed ones: a partial index
-- costs nothing when the fan-out writes a pending delivery per endpoint (a fifth of an event's
-- insert, beside a hundred endpoints).
DROP INDEX deliveries_created;
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE status = 'failed';
