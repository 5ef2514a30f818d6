-- Top of book per venue from the tape (oms:tape): arrival prices and markouts use the mid of two-sided quotes.
-- An empty side has a NULL price and qty 0. Deduplicated by the tape entry (src_ms, src_seq).
CREATE TABLE IF NOT EXISTS quotes
(
    venue    LowCardinality(String),
    symbol   LowCardinality(String),
    bid      Nullable(Float64),
    bid_qty  Float64,
    ask      Nullable(Float64),
    ask_qty  Float64,
    ts_ns    Int64,
    src_ms   UInt64,                        -- the tape entry id <src_ms>-<src_seq> in oms:tape
    src_seq  UInt64,
    ts       DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, toDate(ts), ts_ns, venue, src_ms, src_seq)
