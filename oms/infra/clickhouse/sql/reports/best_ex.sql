-- Best execution, RTS 28 style: per instrument class, the top five execution venues by notional executed.
-- Parameters: from_ns, to_ns Int64 (executions in [from_ns, to_ns), ns since the epoch, UTC); account String ('' all).
-- pct_volume: the venue's share of the class's executed notional (qty * price; one currency per class assumed);
-- pct_orders: the share of the class's orders with at least one execution on the venue (an order executed on two
-- venues counts for both); pct_passive / pct_aggressive: the share of the venue's executions that provided /
-- took liquidity.
WITH
    fills AS (
        SELECT asset_class, venue, order_id, toFloat64(qty * price) AS notional, liquidity
        FROM executions FINAL
        WHERE ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
          AND ({account:String} = '' OR account = {account:String})
    ),
    classes AS (
        SELECT asset_class, sum(notional) AS class_notional, uniqExact(order_id) AS class_orders
        FROM fills
        GROUP BY asset_class
    ),
    venues AS (
        SELECT asset_class, venue, sum(notional) AS venue_notional, uniqExact(order_id) AS venue_orders,
               count() AS executions, countIf(liquidity = 'PASSIVE') AS passive,
               countIf(liquidity = 'AGGRESSIVE') AS aggressive
        FROM fills
        GROUP BY asset_class, venue
    ),
    ranked AS (
        SELECT v.asset_class AS asset_class, v.venue AS venue, v.venue_notional AS venue_notional,
               v.venue_orders AS venue_orders, v.executions AS executions, v.passive AS passive,
               v.aggressive AS aggressive, c.class_notional AS class_notional, c.class_orders AS class_orders,
               row_number() OVER (PARTITION BY v.asset_class ORDER BY v.venue_notional DESC, v.venue) AS venue_rank
        FROM venues AS v
        INNER JOIN classes AS c ON c.asset_class = v.asset_class
    )
SELECT
    asset_class,
    venue_rank AS rank,
    venue,
    venue_notional AS notional,
    100 * venue_notional / class_notional AS pct_volume,
    venue_orders AS orders,
    100 * venue_orders / class_orders AS pct_orders,
    executions,
    100 * passive / executions AS pct_passive,
    100 * aggressive / executions AS pct_aggressive
FROM ranked
WHERE venue_rank <= 5
ORDER BY asset_class, rank
