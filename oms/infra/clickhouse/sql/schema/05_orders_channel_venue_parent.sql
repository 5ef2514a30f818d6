-- Who sent each order, where the OMS routed it, and the algo parent of a child: on `accepted` rows (and `session`
-- on `rejected` rows refused with the command in hand); '' where the event does not carry it, or on rows written
-- before this version. `src`: the stream a row came from, '' for an account journal, 'records' for the OMS's own
-- record of refusals (oms:records:journal:events); part of the dedup key, as entry ids are per stream.
ALTER TABLE orders
    ADD COLUMN IF NOT EXISTS session LowCardinality(String) DEFAULT '' AFTER tif,
    ADD COLUMN IF NOT EXISTS venue LowCardinality(String) DEFAULT '' AFTER session,
    ADD COLUMN IF NOT EXISTS parent_id String DEFAULT '' AFTER venue,
    ADD COLUMN IF NOT EXISTS src LowCardinality(String) AFTER src_seq,
    MODIFY ORDER BY (symbol, account, order_id, src_ms, src_seq, src)
