-- Per symbol and time bucket: the market's VWAP, TWAP and volume beside our own VWAP and quantity.
-- Parameters (clickhouse-client: --param_<name>=<value>):
--   from_ns, to_ns Int64   window [from_ns, to_ns), ns since the epoch (UTC)
--   bucket_ns Int64        bucket width; buckets are [k * bucket_ns, (k + 1) * bucket_ns), aligned on the epoch
--   symbol, account String '' for all (account filters our own fills only)
-- Only buckets with market trades or own fills are listed. market_vwap: sum(qty * price) / sum(qty) of every print
-- in the bucket. market_twap: the last trade price weighted by how long it held within the bucket, from the bucket
-- start with the price carried in from the previous print (if there is one), else from the bucket's first print, up
-- to the bucket end (or to_ns); NULL for a bucket without prints. own_vwap: the same VWAP over our fills.
-- participation: the quantity of the prints we took part in over market_qty, each print once: when both sides of an
-- internal cross are among the fills selected, the passive side's fill is not counted again.
WITH
    in_window AS (
        SELECT symbol, ts_ns, toFloat64(argMax(price, (src_ms, src_seq))) AS px
        FROM market_trades FINAL
        WHERE ({symbol:String} = '' OR symbol = {symbol:String})
          AND ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
        GROUP BY symbol, ts_ns
    ),
    carried AS (
        -- the print in force at from_ns, per symbol
        SELECT symbol, max(ts_ns) AS carried_ns, toFloat64(argMax(price, (ts_ns, src_ms, src_seq))) AS carried_px
        FROM market_trades FINAL
        WHERE ({symbol:String} = '' OR symbol = {symbol:String}) AND ts_ns < {from_ns:Int64}
          AND symbol IN (SELECT symbol FROM in_window)
        GROUP BY symbol
    ),
    prints AS (
        SELECT symbol, ts_ns, px,
               leadInFrame(ts_ns, 1, {to_ns:Int64}) OVER w AS next_ns,
               lagInFrame(px, 1, nan) OVER w AS prev_px,
               lagInFrame(ts_ns, 1, toInt64(-1)) OVER w AS prev_ns
        FROM (SELECT symbol, ts_ns, px FROM in_window UNION ALL SELECT symbol, carried_ns, carried_px FROM carried)
        WINDOW w AS (PARTITION BY symbol ORDER BY ts_ns ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)
    ),
    pieces AS (
        -- each print in the window holds until the next print or the end of its bucket (or to_ns); the first print
        -- of a bucket also holds the price carried in from the previous print, from the bucket start (or from_ns)
        -- to its own time
        SELECT symbol, intDiv(ts_ns, {bucket_ns:Int64}) AS b,
               px * toFloat64(least(next_ns, (b + 1) * {bucket_ns:Int64}, {to_ns:Int64}) - ts_ns)
                   + if(prev_ns >= 0 AND prev_ns < greatest(b * {bucket_ns:Int64}, {from_ns:Int64}),
                        prev_px * toFloat64(ts_ns - greatest(b * {bucket_ns:Int64}, {from_ns:Int64})), 0) AS weighted,
               toFloat64(least(next_ns, (b + 1) * {bucket_ns:Int64}, {to_ns:Int64}) - ts_ns)
                   + if(prev_ns >= 0 AND prev_ns < greatest(b * {bucket_ns:Int64}, {from_ns:Int64}),
                        toFloat64(ts_ns - greatest(b * {bucket_ns:Int64}, {from_ns:Int64})), 0) AS covered
        FROM prints
        WHERE ts_ns >= {from_ns:Int64}
    ),
    twap AS (
        SELECT symbol, b, if(sum(covered) > 0, sum(weighted) / sum(covered), NULL) AS market_twap
        FROM pieces
        GROUP BY symbol, b
    ),
    market AS (
        SELECT symbol, intDiv(ts_ns, {bucket_ns:Int64}) AS b, toFloat64(sum(qty * price) / sum(qty)) AS market_vwap,
               toFloat64(sum(qty)) AS market_qty, count() AS market_trades
        FROM market_trades FINAL
        WHERE ({symbol:String} = '' OR symbol = {symbol:String})
          AND ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
        GROUP BY symbol, b
    ),
    selected AS (
        SELECT order_id, contra_order_id, symbol, toFloat64(qty) AS qty, toFloat64(price) AS price, liquidity, ts_ns
        FROM executions FINAL
        WHERE ({symbol:String} = '' OR symbol = {symbol:String})
          AND ({account:String} = '' OR account = {account:String})
          AND ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
    ),
    own AS (
        SELECT symbol, intDiv(ts_ns, {bucket_ns:Int64}) AS b, sum(qty * price) / sum(qty) AS own_vwap,
               sum(qty) AS own_qty, count() AS own_fills,
               sumIf(qty, NOT (liquidity = 'PASSIVE'
                               AND coalesce(contra_order_id, 0) IN (SELECT order_id FROM selected))) AS own_print_qty
        FROM selected
        GROUP BY symbol, b
    ),
    buckets AS (
        SELECT symbol, b FROM market
        UNION DISTINCT
        SELECT symbol, b FROM own
    )
SELECT
    k.symbol AS symbol,
    k.b * {bucket_ns:Int64} AS bucket_start_ns,
    m.market_vwap AS market_vwap,
    t.market_twap AS market_twap,
    coalesce(m.market_qty, 0) AS market_qty,
    coalesce(m.market_trades, 0) AS market_trades,
    o.own_vwap AS own_vwap,
    coalesce(o.own_qty, 0) AS own_qty,
    coalesce(o.own_fills, 0) AS own_fills,
    if(m.market_qty > 0, coalesce(o.own_print_qty, 0) / m.market_qty, NULL) AS participation
FROM buckets AS k
LEFT JOIN market AS m ON m.symbol = k.symbol AND m.b = k.b
LEFT JOIN twap AS t ON t.symbol = k.symbol AND t.b = k.b
LEFT JOIN own AS o ON o.symbol = k.symbol AND o.b = k.b
ORDER BY symbol, bucket_start_ns
SETTINGS join_use_nulls = 1
