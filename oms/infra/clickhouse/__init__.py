"""Post-trade analytics: the journal and the tape stream into ClickHouse; TCA and best-execution reports read it.

- `settings`: `AnalyticsSettings`, the `[analytics]` table of the OMS config (where ClickHouse is, batching, fees,
  markout horizons).
- `clickhouse`: a clickhouse-connect client for a DSN (embedded chDB by default, a server by URL) and the schema.
- `tape`: `Tape`, the writer of venue trade prints and top-of-book quotes to the Redis stream `oms:tape`.
- `sink`: `Sink`, a consumer group over the journal streams and the tape that inserts batches and acknowledges
  them only after ClickHouse confirmed the insert (at least once into tables that deduplicate: exactly once in
  every report).
- `rows`: journal and tape records as ClickHouse columns (pure).
- `service`: `SinkService`, the sink on a thread for `oms serve`; `python -m oms.infra.clickhouse.service` runs it
alone.
- `reports`: per-order TCA, per-bucket market and own VWAP/TWAP, best execution and routing; SQL in `sql/`.
- `cli`: `oms report tca|buckets|best-ex|routing`.

`docs/compliance.md` describes the tables, the reports' definitions and the sign convention.

Nothing on the order path imports this package: it reads what the journal already holds.
"""
