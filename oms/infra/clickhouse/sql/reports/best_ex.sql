-- Best execution: the top five execution venues per class of instrument, as RTS 28 (Commission Delegated Regulation
-- (EU) 2017/576, Annex II, Table 1) asks for them. Parameters (clickhouse-client: --param_<name>=<value>):
--   from_ns, to_ns Int64          executions in [from_ns, to_ns), ns since the epoch (UTC); the report's period
--   account String                '' for all
--   mic_venues, mic_codes Array(String)   the ISO 10383 MIC of each venue named; other venues get '' (never a guess)
--
-- Per class (asset_class) and period, the venues ranked by volume traded (notional, qty * price; one currency per
-- class is assumed), the first five listed. An order counts once per venue it executed on (an order executed on two
-- venues counts for both), whatever its number of executions there.
--   pct_volume      the venue's notional / the class's notional
--   pct_orders      orders executed on the venue / orders executed in the class
--   pct_passive     orders that provided liquidity on the venue (at least one PASSIVE execution there) / the venue's
--                   orders (RTS 28 Art. 2: "passive order")
--   pct_aggressive  orders that took liquidity on the venue (at least one AGGRESSIVE execution there) / the venue's
--                   orders ("aggressive order"). An order with both kinds of execution on a venue provided AND took
--                   liquidity there: it counts in both, so pct_passive + pct_aggressive exceeds 100 by the share of
--                   such orders.
--   pct_directed    orders whose client specified the execution venue / the venue's orders ("directed order")
--   low_activity    'Y' when the class averaged fewer than one execution per business day over the period (the
--                   table's "Notification if < 1 average trade per business day in the previous year"), else 'N'.
--                   Business days: the UTC calendar days Monday to Friday that [from_ns, to_ns) touches, no holiday
--                   calendar; an open end (from_ns <= 0, to_ns = 2^63 - 1) is closed at the first / last execution
--                   selected; a period without a business day counts as one.
-- The columns after pct_directed are the counts behind the figures.
WITH
    fills AS (
        SELECT asset_class, venue, order_id, toFloat64(qty * price) AS notional, liquidity, ts_ns
        FROM executions FINAL
        WHERE ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
          AND ({account:String} = '' OR account = {account:String})
    ),
    order_venue AS (
        -- one row per order and venue it executed on
        SELECT asset_class, venue, order_id, sum(notional) AS notional, count() AS executions,
               max(liquidity = 'PASSIVE') AS passive, max(liquidity = 'AGGRESSIVE') AS aggressive,
               -- Directed: the client named the venue. The OMS takes no venue from its clients (FIX ExDestination is
               -- not read, the REST API has no venue field; `orders.venue` is the OMS's own routing by symbol), so
               -- no order is. This is the one place to read such an instruction once orders carry it.
               toUInt8(0) AS directed
        FROM fills
        GROUP BY asset_class, venue, order_id
    ),
    classes AS (
        SELECT asset_class, sum(notional) AS class_notional, uniqExact(order_id) AS class_orders,
               sum(executions) AS class_executions
        FROM order_venue
        GROUP BY asset_class
    ),
    venues AS (
        SELECT asset_class, venue, sum(notional) AS venue_notional, count() AS venue_orders,
               sum(passive) AS passive_orders, sum(aggressive) AS aggressive_orders,
               sum(directed) AS directed_orders, sum(executions) AS executions
        FROM order_venue
        GROUP BY asset_class, venue
    ),
    period AS (
        SELECT toDate32(fromUnixTimestamp64Nano(if({from_ns:Int64} > 0, {from_ns:Int64}, min(ts_ns)), 'UTC'))
                   AS first_day,
               toDate32(fromUnixTimestamp64Nano(
                   if({to_ns:Int64} < 9223372036854775807, {to_ns:Int64}, max(ts_ns) + 1) - 1, 'UTC')) AS last_day
        FROM fills
    ),
    calendar AS (
        SELECT greatest(arrayCount(d -> toDayOfWeek(d) <= 5,
                                   arrayMap(i -> first_day + i,
                                            range(toUInt32(greatest(dateDiff('day', first_day, last_day) + 1, 0))))),
                        1) AS business_days
        FROM period
    ),
    ranked AS (
        SELECT v.asset_class AS asset_class, v.venue AS venue, v.venue_notional AS venue_notional,
               v.venue_orders AS venue_orders, v.passive_orders AS passive_orders,
               v.aggressive_orders AS aggressive_orders, v.directed_orders AS directed_orders,
               v.executions AS executions, c.class_notional AS class_notional, c.class_orders AS class_orders,
               c.class_executions AS class_executions,
               row_number() OVER (PARTITION BY v.asset_class ORDER BY v.venue_notional DESC, v.venue) AS venue_rank
        FROM venues AS v
        INNER JOIN classes AS c ON c.asset_class = v.asset_class
    )
SELECT
    r.asset_class AS asset_class,
    if(r.class_executions / k.business_days < 1, 'Y', 'N') AS low_activity,
    r.venue_rank AS rank,
    r.venue AS venue,
    transform(toString(r.venue), {mic_venues:Array(String)}, {mic_codes:Array(String)}, '') AS mic,
    100 * r.venue_notional / r.class_notional AS pct_volume,
    100 * r.venue_orders / r.class_orders AS pct_orders,
    100 * r.passive_orders / r.venue_orders AS pct_passive,
    100 * r.aggressive_orders / r.venue_orders AS pct_aggressive,
    100 * r.directed_orders / r.venue_orders AS pct_directed,
    r.venue_notional AS notional,
    r.venue_orders AS orders,
    r.passive_orders AS passive_orders,
    r.aggressive_orders AS aggressive_orders,
    r.directed_orders AS directed_orders,
    r.executions AS executions,
    r.class_executions AS class_executions,
    k.business_days AS business_days
FROM ranked AS r
CROSS JOIN calendar AS k
WHERE r.venue_rank <= 5
ORDER BY asset_class, rank
