-- Algo parent orders (TWAP/VWAP/POV/iceberg/bracket) from the algo engine's journal (oms:algos:journal:parents):
-- one row per journal entry the sink maps (see docs/compliance.md for which). Their child orders are rows of
-- `orders` (parent_id on `accepted`) and their fills rows of `executions`. The journal holds no "parent done"
-- record; a parent's status is derived from these rows and its children's (tca_parents.sql).
-- Deduplicated by the journal entry it came from (src_ms, src_seq): a batch the sink inserts again after a crash
-- collapses under FINAL.
CREATE TABLE IF NOT EXISTS parents
(
    event           LowCardinality(String),  -- accepted|cancel_requested|closing|child_sent|child_done
    parent_id       String,
    kind            LowCardinality(String),  -- accepted: TWAP | VWAP | POV | ICEBERG | BRACKET
    account         LowCardinality(String),  -- accepted: the parent's account, symbol and class; '' on other rows
    symbol          LowCardinality(String),
    asset_class     LowCardinality(String),
    side            LowCardinality(String),  -- accepted: the parent's side; child_sent: the child's
    qty             Nullable(Decimal(38, 9)),      -- accepted: the parent's quantity (a child's terms: its `orders` rows)
    price           Nullable(Decimal(38, 9)),      -- accepted: limit price (TWAP/VWAP/POV cap or floor, iceberg price,
                                             -- bracket entry); NULL: none
    stop_price      Nullable(Decimal(38, 9)),      -- accepted: a bracket's stop-loss
    sched_start_ns  Nullable(Int64),         -- accepted: TWAP/VWAP/POV schedule window
    sched_end_ns    Nullable(Int64),
    params          String,                  -- accepted: the kind's other terms, JSON (prices and qtys as decimals)
    status          LowCardinality(String),  -- cancel_requested: CANCELED; closing: what it closes with
    child_cl_ord_id String,                  -- child_sent / child_done: the child's ClOrdID
    role            LowCardinality(String),  -- child_sent: slice | entry | tp | sl
    ord_type        LowCardinality(String),  -- child_sent
    tif             LowCardinality(String),  -- child_sent
    outcome         LowCardinality(String),  -- child_done: filled | canceled | expired | rejected | lost
    reason          LowCardinality(String),  -- child_done: the cancel or reject reason's name
    text            String,                  -- closing / child_done
    ts_ns           Int64,                   -- the record's time; when it has none (0), the entry's (ms)
    ts_source       LowCardinality(String),  -- record | entry: where ts_ns came from
    src_ms          UInt64,                  -- the journal entry id <src_ms>-<src_seq> in oms:algos:journal:parents
    src_seq         UInt64,
    ts              DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns),
    INDEX ts_minmax ts_ns TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (parent_id, src_ms, src_seq)
