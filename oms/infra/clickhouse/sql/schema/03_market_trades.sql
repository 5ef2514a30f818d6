-- Venue trade prints from the tape (oms:tape), the market side of VWAP/TWAP, participation and last-trade marks.
-- Deduplicated by (venue, match_id).
CREATE TABLE IF NOT EXISTS market_trades
(
    venue          LowCardinality(String),
    symbol         LowCardinality(String),
    asset_class    LowCardinality(String),
    match_id       UInt64,                  -- unique per venue
    price          Float64,
    qty            Float64,
    aggressor_side LowCardinality(String),  -- BUY | SELL: the side that took liquidity
    ts_ns          Int64,
    src_ms         UInt64,                  -- the tape entry id <src_ms>-<src_seq> in oms:tape
    src_seq        UInt64,
    ts             DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (symbol, toDate(ts), venue, match_id)
