DROP INDEX deliveries_failed;
CREATE INDEX deliveries_created ON deliveries (endpoint_id, created_at);
