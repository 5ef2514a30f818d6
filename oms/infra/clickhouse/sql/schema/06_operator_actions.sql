-- What operators did (the kill switch, ...), from the OMS's own record (oms:records:journal:events): the action,
-- the account ('' for every account), its setting, who (the API key's session `REST:<key id>`, or a tool's name).
-- Deduplicated by the stream entry.
CREATE TABLE IF NOT EXISTS operator_actions
(
    action  LowCardinality(String),
    account LowCardinality(String),
    detail  String,
    actor   LowCardinality(String),
    ts_ns   Int64,
    src_ms  UInt64,
    src_seq UInt64,
    ts      DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (src_ms, src_seq)
