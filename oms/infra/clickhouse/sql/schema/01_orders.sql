-- Every order event except fills (those are rows of `executions`): one row per journal entry.
-- Deduplicated by the journal entry it came from (account, src_ms, src_seq): a batch the sink inserts again after a
-- crash collapses under FINAL.
CREATE TABLE IF NOT EXISTS orders
(
    event          LowCardinality(String),  -- accepted|rejected|canceled|replaced|expired|cancel_rejected|replace_rejected
    order_id       UInt64,                  -- the OMS's OrderID, constant across the ClOrdID chain of replaces
    cl_ord_id      String,
    orig_cl_ord_id String,                  -- replaced / canceled / cancel_rejected: the ClOrdID it answered
    account        LowCardinality(String),
    symbol         LowCardinality(String),
    asset_class    LowCardinality(String),  -- from configs/instruments.toml; '' for an unknown symbol (a reject)
    side           LowCardinality(String),  -- BUY | SELL on accepted; '' where the event does not carry it
    ord_type       LowCardinality(String),  -- MARKET | LIMIT | STOP | STOP_LIMIT on accepted
    tif            LowCardinality(String),  -- DAY | GTC | IOC | FOK | GTD on accepted
    qty            Nullable(Float64),       -- accepted/replaced: order (total) qty; canceled/expired: qty taken off
    price          Nullable(Float64),       -- accepted/replaced: limit price
    stop_price     Nullable(Float64),
    leaves_qty     Nullable(Float64),       -- replaced: what is left to fill
    reason         LowCardinality(String),  -- rejected / canceled / cancel_rejected: the reason code's name
    text           String,
    ts_ns          Int64,                   -- event time, ns since the epoch (UTC)
    src_ms         UInt64,                  -- the journal entry id <src_ms>-<src_seq> in oms:journal:{account}
    src_seq        UInt64,
    ts             DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns),
    INDEX ts_minmax ts_ns TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, account, order_id, src_ms, src_seq)
