-- Each application's usage per API and UTC day, added up from the gateways' gateway.usage
-- reports: requests, 4xx and 5xx answers, and requests per latency bucket (b0: ≤5 ms, b1: ≤10,
-- b2: ≤25, b3: ≤50, b4: ≤100, b5: ≤250, b6: ≤500, b7: ≤1000, b8: ≤2500, b9: slower).
CREATE TABLE usage_daily (
    client_id TEXT NOT NULL,
    api TEXT NOT NULL,
    day TEXT NOT NULL,
    requests BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    server_errors BIGINT NOT NULL,
    b0 BIGINT NOT NULL, b1 BIGINT NOT NULL, b2 BIGINT NOT NULL, b3 BIGINT NOT NULL, b4 BIGINT NOT NULL,
    b5 BIGINT NOT NULL, b6 BIGINT NOT NULL, b7 BIGINT NOT NULL, b8 BIGINT NOT NULL, b9 BIGINT NOT NULL,
    PRIMARY KEY (client_id, day, api)
);
