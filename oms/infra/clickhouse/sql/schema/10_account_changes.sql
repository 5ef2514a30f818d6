-- What changed an account's risk state, as its journal recorded it: the kill switch, the trading state (halts and
-- resumes), new limits, the start of a trading day. `detail`: on/off, the state's name, the limits as JSON, ''.
-- Who asked for a change the OMS took from an operator is in `operator_actions`. Deduplicated by journal entry.
CREATE TABLE IF NOT EXISTS account_changes
(
    account LowCardinality(String),
    change  LowCardinality(String),  -- kill_switch | trading_state | limits | day_started
    detail  String,
    ts_ns   Int64,
    src_ms  UInt64,
    src_seq UInt64,
    ts      DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(ts_ns)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (account, src_ms, src_seq)
