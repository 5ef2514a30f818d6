-- Fills, one row per ExecID. ReplacingMergeTree keyed by exec_id (with the symbol, day and account every copy of a
-- fill shares): a fill inserted twice (sink restart) or journaled twice is counted once by queries with FINAL.
CREATE TABLE IF NOT EXISTS executions
(
    exec_id         UInt64,                  -- unique per fill: the dedup key
    order_id        UInt64,
    cl_ord_id       String,
    contra_order_id Nullable(UInt64),        -- the other side's OrderID on an internal cross
    account         LowCardinality(String),
    symbol          LowCardinality(String),
    asset_class     LowCardinality(String),  -- equity | future | crypto | fx ... (instrument class, best execution)
    side            LowCardinality(String),  -- BUY | SELL
    qty             Float64,                 -- this fill (LastQty), in instrument units (shares, contracts, coins)
    price           Float64,                 -- this fill (LastPx), in the instrument's currency
    leaves_qty      Float64,
    cum_qty         Float64,
    venue           LowCardinality(String),
    liquidity       LowCardinality(String),  -- PASSIVE (provided: rested in the book) | AGGRESSIVE (took liquidity)
    ts_ns           Int64,                   -- execution time, ns since the epoch (UTC)
    src_ms          UInt64,                  -- the journal entry id <src_ms>-<src_seq> in oms:journal:{account}
    src_seq         UInt64,
    ts              DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns),
    INDEX ts_minmax ts_ns TYPE minmax GRANULARITY 4,
    INDEX order_bf order_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, toDate(ts), account, exec_id)
