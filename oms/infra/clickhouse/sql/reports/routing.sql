-- Order routing, Rule 606 style: per venue and order type, the orders executed there.
-- Parameters: from_ns, to_ns Int64 (executions in [from_ns, to_ns), ns since the epoch, UTC); account String ('' all).
-- An order counts as routed to a venue when it has an execution there. pct_of_type: share of the orders of that
-- type executed in the window; pct_of_all: share of all orders executed in the window. ord_type comes from the
-- order's accepted event ('' if the orders table lacks it).
WITH
    fills AS (
        SELECT order_id, venue, toFloat64(qty) AS qty, toFloat64(qty * price) AS notional, liquidity
        FROM executions FINAL
        WHERE ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
          AND ({account:String} = '' OR account = {account:String})
    ),
    types AS (
        SELECT order_id, any(ord_type) AS order_type
        FROM orders FINAL
        WHERE event = 'accepted' AND order_id IN (SELECT order_id FROM fills)
        GROUP BY order_id
    ),
    typed AS (
        SELECT f.order_id AS order_id, f.venue AS venue, f.qty AS qty, f.notional AS notional,
               f.liquidity AS liquidity, coalesce(t.order_type, '') AS order_type
        FROM fills AS f
        LEFT JOIN types AS t ON t.order_id = f.order_id
    ),
    per_type AS (
        SELECT order_type, uniqExact(order_id) AS type_orders
        FROM typed
        GROUP BY order_type
    )
SELECT
    x.venue AS venue,
    x.order_type AS ord_type,
    uniqExact(x.order_id) AS orders,
    100 * orders / any(p.type_orders) AS pct_of_type,
    100 * orders / (SELECT uniqExact(order_id) FROM fills) AS pct_of_all,
    count() AS executions,
    sum(x.qty) AS qty,
    sum(x.notional) AS notional,
    100 * countIf(x.liquidity = 'PASSIVE') / executions AS pct_passive,
    100 * countIf(x.liquidity = 'AGGRESSIVE') / executions AS pct_aggressive
FROM typed AS x
INNER JOIN per_type AS p ON p.order_type = x.order_type
GROUP BY x.venue, x.order_type
ORDER BY venue, ord_type
SETTINGS join_use_nulls = 1
