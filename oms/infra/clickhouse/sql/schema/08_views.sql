-- Views for questions compliance asks every day, deduplicated (they read with FINAL):
-- order_history: every event of every order, fills included, one row each (ORDER BY ts_ns when reading);
-- executions_daily: per day, account, symbol and venue: fills, total quantity, notional, average price;
-- order_state: per order, its terms at acceptance, what filled and its status now (as the store knows it).
CREATE OR REPLACE VIEW order_history AS
SELECT order_id, ts_ns, ts, event AS what, cl_ord_id, orig_cl_ord_id, account, symbol, side, qty, price,
       venue, reason, text, session
FROM orders FINAL
UNION ALL
SELECT order_id, ts_ns, ts, 'fill' AS what, cl_ord_id, '' AS orig_cl_ord_id, account, symbol, side, qty, price,
       venue, liquidity AS reason, '' AS text, '' AS session
FROM executions FINAL;
CREATE OR REPLACE VIEW executions_daily AS
SELECT toDate(ts) AS day, account, symbol, venue, count() AS fills, sum(e.qty) AS total_qty,
       sum(e.qty * e.price) AS notional, notional / total_qty AS avg_px
FROM executions AS e FINAL
GROUP BY day, account, symbol, venue;
CREATE OR REPLACE VIEW order_state AS
SELECT a.order_id AS order_id, a.account AS account, a.symbol AS symbol, a.side AS side, a.ord_type AS ord_type,
       a.tif AS tif, a.session AS session, a.venue AS venue, a.parent_id AS parent_id, e.order_qty AS order_qty,
       coalesce(f.filled, 0) AS filled_qty, f.avg_px AS avg_px,
       multiIf(e.last_event IN ('canceled', 'expired', 'rejected'), e.last_event, filled_qty >= order_qty, 'filled',
               filled_qty > 0, 'partially_filled', e.last_event = 'replaced', 'replaced', 'new') AS status,
       a.ts_ns AS accepted_ns, greatest(e.last_ns, coalesce(f.last_fill_ns, 0)) AS last_ns
FROM (SELECT * FROM orders FINAL WHERE event = 'accepted') AS a
INNER JOIN (
    SELECT order_id, argMaxIf(qty, (ts_ns, src_ms, src_seq), event IN ('accepted', 'replaced')) AS order_qty,
           argMax(event, (ts_ns, src_ms, src_seq)) AS last_event, max(ts_ns) AS last_ns
    FROM orders FINAL
    WHERE event NOT IN ('cancel_rejected', 'replace_rejected')
    GROUP BY order_id
) AS e ON e.order_id = a.order_id
LEFT JOIN (
    SELECT order_id, sum(qty) AS filled, sum(qty * price) / sum(qty) AS avg_px, max(ts_ns) AS last_fill_ns
    FROM executions FINAL
    GROUP BY order_id
) AS f ON f.order_id = a.order_id
SETTINGS join_use_nulls = 1;
