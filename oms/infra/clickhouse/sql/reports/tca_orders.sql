-- Per-order transaction cost analysis. One row per order accepted in [from_ns, to_ns) (optionally one account,
-- symbol or order). Parameters (clickhouse-client: --param_<name>=<value>):
--   from_ns, to_ns Int64        acceptance window, ns since the epoch (UTC)
--   account, symbol String      '' for all
--   order_id UInt64             0 for all
--   fee_venues Array(String), fee_bps Array(Float64), default_fee_bps Float64   fees per venue, bps of notional
--   horizons_ns Array(Int64)    markout horizons after each fill
--   arrival_max_age_ns Int64    how old the market data behind an arrival price may be
--
-- Sign convention, for buys and sells alike: every *_bps figure is a COST, positive when the execution was worse than
-- the benchmark: side * (price - benchmark) / benchmark * 1e4, side = +1 for a buy, -1 for a sell.
-- Prices "at" a time t: the mid (bid + ask) / 2 of the latest two-sided quote of the symbol on any venue, falling back
-- to the latest trade print. Benchmarks before an event (arrival, start of execution) use the market strictly before
-- it (the order's own quote or print does not move its benchmark); after-the-fact marks (end of the order, markouts)
-- use the market at or before t.
-- Arrival price (Kissell): the mid of the book as it stood just before acceptance (its latest quote, whichever sides
-- it had), when that quote is two-sided and at most arrival_max_age_ns old; else the last print before acceptance
-- within the same age; else NULL. arrival_source says which: 'mid', 'last_trade' or 'none'.
-- The order's life is [arrival_ns, end_ns]: from acceptance to its last event (fill, cancel, expiry, replace; a
-- refused cancel or replace changed nothing and does not count).
-- A markout whose horizon lies past the symbol's last market data in the store (quote or print) is NULL: the store
-- does not cover it yet, and the figure must not change with when the report is run.
WITH
    accepted AS (
        SELECT order_id, account, symbol, asset_class, side, ord_type, min(ts_ns) AS arrival_ns
        FROM orders FINAL
        WHERE event = 'accepted' AND ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
          AND ({account:String} = '' OR account = {account:String})
          AND ({symbol:String} = '' OR symbol = {symbol:String})
          AND ({order_id:UInt64} = 0 OR order_id = {order_id:UInt64})
        GROUP BY order_id, account, symbol, asset_class, side, ord_type
    ),
    life AS (
        SELECT order_id,
               toFloat64(assumeNotNull(argMaxIf(qty, (ts_ns, src_ms, src_seq), event IN ('accepted', 'replaced'))))
                   AS order_qty,
               max(ts_ns) AS last_event_ns
        FROM orders FINAL
        WHERE order_id IN (SELECT order_id FROM accepted) AND event NOT IN ('cancel_rejected', 'replace_rejected')
        GROUP BY order_id
    ),
    fills AS (
        SELECT order_id, symbol, toFloat64(qty) AS qty, toFloat64(price) AS price, ts_ns,
               if(side = 'BUY', 1, -1) AS sgn,
               transform(venue, {fee_venues:Array(String)}, {fee_bps:Array(Float64)}, {default_fee_bps:Float64}) AS fee
        FROM executions FINAL
        WHERE order_id IN (SELECT order_id FROM accepted)
    ),
    done AS (
        SELECT order_id, count() AS n_fills, sum(qty) AS filled, sum(qty * price) AS notional,
               min(ts_ns) AS first_fill_ns, max(ts_ns) AS last_fill_ns, sum(qty * price * fee) / 1e4 AS fees
        FROM fills
        GROUP BY order_id
    ),
    o AS (
        SELECT a.order_id AS order_id, a.account AS account, a.symbol AS symbol, a.asset_class AS asset_class,
               a.side AS side, if(a.side = 'BUY', 1, -1) AS sgn, a.ord_type AS ord_type, a.arrival_ns AS arrival_ns,
               l.order_qty AS order_qty, greatest(l.last_event_ns, coalesce(d.last_fill_ns, 0)) AS end_ns,
               coalesce(d.n_fills, 0) AS n_fills, coalesce(d.filled, 0) AS filled, coalesce(d.notional, 0) AS notional,
               d.first_fill_ns AS first_fill_ns, coalesce(d.fees, 0) AS fees
        FROM accepted AS a
        INNER JOIN life AS l ON l.order_id = a.order_id
        LEFT JOIN done AS d ON d.order_id = a.order_id
    ),
    mids AS (
        SELECT symbol, ts_ns, toFloat64(assumeNotNull(argMax((bid + ask) / 2, (src_ms, src_seq)))) AS mid
        FROM quotes FINAL
        WHERE bid IS NOT NULL AND ask IS NOT NULL AND symbol IN (SELECT symbol FROM accepted)
        GROUP BY symbol, ts_ns
    ),
    books AS (
        -- every top of book, one-sided and empty ones too: the book as it stood
        SELECT symbol, ts_ns, argMax(tuple(toFloat64(bid), toFloat64(ask)), (src_ms, src_seq)) AS top
        FROM quotes FINAL
        WHERE symbol IN (SELECT symbol FROM accepted)
        GROUP BY symbol, ts_ns
    ),
    lasts AS (
        SELECT symbol, ts_ns, toFloat64(argMax(price, (src_ms, src_seq))) AS px
        FROM market_trades FINAL
        WHERE symbol IN (SELECT symbol FROM accepted)
        GROUP BY symbol, ts_ns
    ),
    arrival AS (
        SELECT o.order_id AS order_id,
               multiIf(b.ts_ns IS NOT NULL AND b.top.1 IS NOT NULL AND b.top.2 IS NOT NULL
                           AND o.arrival_ns - b.ts_ns <= {arrival_max_age_ns:Int64}, 'mid',
                       t.ts_ns IS NOT NULL AND o.arrival_ns - t.ts_ns <= {arrival_max_age_ns:Int64}, 'last_trade',
                       'none') AS arrival_source,
               multiIf(arrival_source = 'mid', (b.top.1 + b.top.2) / 2, arrival_source = 'last_trade', t.px, NULL)
                   AS arrival_px
        FROM o
        ASOF LEFT JOIN books AS b ON b.symbol = o.symbol AND o.arrival_ns > b.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = o.symbol AND o.arrival_ns > t.ts_ns
    ),
    start AS (
        SELECT o.order_id AS order_id, coalesce(m.mid, t.px) AS start_px
        FROM (SELECT order_id, symbol, assumeNotNull(first_fill_ns) AS first_ns FROM o WHERE n_fills > 0) AS o
        ASOF LEFT JOIN mids AS m ON m.symbol = o.symbol AND o.first_ns > m.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = o.symbol AND o.first_ns > t.ts_ns
    ),
    finish AS (
        SELECT o.order_id AS order_id, coalesce(m.mid, t.px) AS end_px, t.px AS end_last_px
        FROM o
        ASOF LEFT JOIN mids AS m ON m.symbol = o.symbol AND o.end_ns >= m.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = o.symbol AND o.end_ns >= t.ts_ns
    ),
    market AS (
        -- interval VWAP and volume of every print in [arrival_ns, end_ns]
        SELECT o.order_id AS order_id, sum(t.qty * t.price) / sum(t.qty) AS vwap, sum(t.qty) AS volume
        FROM o
        INNER JOIN (SELECT symbol, ts_ns, toFloat64(price) AS price, toFloat64(qty) AS qty
                    FROM market_trades FINAL
                    WHERE symbol IN (SELECT symbol FROM accepted)) AS t ON t.symbol = o.symbol
        WHERE t.ts_ns >= o.arrival_ns AND t.ts_ns <= o.end_ns
        GROUP BY o.order_id
    ),
    segments AS (
        -- the last trade price holds from its print until the next print
        SELECT symbol, ts_ns AS t0, px,
               leadInFrame(ts_ns, 1, toInt64(9223372036854775807)) OVER (
                   PARTITION BY symbol ORDER BY ts_ns ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS t1
        FROM lasts
    ),
    twap AS (
        -- time-weighted last-trade price over [arrival_ns, end_ns], from the first moment a trade price exists
        SELECT o.order_id AS order_id,
               sum(g.px * toFloat64(least(g.t1, o.end_ns) - greatest(g.t0, o.arrival_ns))) AS weighted,
               sum(toFloat64(least(g.t1, o.end_ns) - greatest(g.t0, o.arrival_ns))) AS covered
        FROM o
        INNER JOIN segments AS g ON g.symbol = o.symbol
        WHERE g.t0 < o.end_ns AND g.t1 > o.arrival_ns
        GROUP BY o.order_id
    ),
    covered AS (
        -- how far the store's market data of each symbol goes
        SELECT symbol, max(ts_ns) AS data_end
        FROM (SELECT symbol, ts_ns FROM quotes FINAL WHERE symbol IN (SELECT symbol FROM accepted)
              UNION ALL
              SELECT symbol, ts_ns FROM market_trades FINAL WHERE symbol IN (SELECT symbol FROM accepted))
        GROUP BY symbol
    ),
    marks AS (
        SELECT f.order_id AS order_id, f.h AS h, f.qty AS qty, f.price AS price, f.sgn AS sgn,
               if(c.data_end IS NOT NULL AND f.t <= c.data_end, coalesce(m.mid, t.px), NULL) AS mark
        FROM (SELECT order_id, symbol, qty, price, sgn, h, ts_ns + h AS t
              FROM fills ARRAY JOIN {horizons_ns:Array(Int64)} AS h) AS f
        LEFT JOIN covered AS c ON c.symbol = f.symbol
        ASOF LEFT JOIN mids AS m ON m.symbol = f.symbol AND f.t >= m.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = f.symbol AND f.t >= t.ts_ns
    ),
    markouts AS (
        -- per horizon: the quantity-weighted cost of each fill against the mark h later, over fills with a mark
        SELECT order_id,
               arrayMap(x -> x.2, arraySort(x -> indexOf({horizons_ns:Array(Int64)}, x.1), groupArray((h, bps))))
                   AS markouts_bps
        FROM (
            SELECT order_id, h,
                   if(sumIf(qty, mark IS NOT NULL) > 0,
                      sumIf(qty * sgn * (price - mark) / mark, mark IS NOT NULL) / sumIf(qty, mark IS NOT NULL) * 1e4,
                      NULL) AS bps
            FROM marks
            GROUP BY order_id, h
        )
        GROUP BY order_id
    )
SELECT
    o.order_id AS order_id,
    o.account AS account,
    o.symbol AS symbol,
    o.asset_class AS asset_class,
    o.side AS side,
    o.ord_type AS ord_type,
    o.order_qty AS order_qty,
    o.filled AS filled_qty,
    o.filled / o.order_qty AS fill_rate,
    o.n_fills AS n_fills,
    if(o.filled > 0, o.notional / o.filled, NULL) AS avg_px,
    a.arrival_px AS arrival_px,
    a.arrival_source AS arrival_source,
    mk.vwap AS vwap,
    if(tw.covered > 0, tw.weighted / tw.covered, fi.end_last_px) AS twap,
    o.sgn * (avg_px - arrival_px) / arrival_px * 1e4 AS slippage_arrival_bps,
    o.sgn * (avg_px - vwap) / vwap * 1e4 AS slippage_vwap_bps,
    o.sgn * (avg_px - twap) / twap * 1e4 AS slippage_twap_bps,
    -- Perold implementation shortfall against a paper order of order_qty at the arrival price, in bps of its value
    o.order_qty * arrival_px AS paper_notional,
    if(o.filled > 0, o.sgn * (s.start_px - arrival_px) * o.filled, 0) / paper_notional * 1e4 AS is_delay_bps,
    if(o.filled > 0, o.sgn * (o.notional - s.start_px * o.filled), 0) / paper_notional * 1e4 AS is_realized_bps,
    if(o.order_qty > o.filled, o.sgn * (fi.end_px - arrival_px) * (o.order_qty - o.filled), 0) / paper_notional * 1e4
        AS is_opportunity_bps,
    o.fees / paper_notional * 1e4 AS is_fees_bps,
    is_delay_bps + is_realized_bps + is_opportunity_bps + is_fees_bps AS is_total_bps,
    s.start_px AS start_px,
    fi.end_px AS end_px,
    o.fees AS fees,
    if(mk.volume > 0, o.filled / mk.volume, NULL) AS participation,
    mo.markouts_bps AS markouts_bps,
    o.arrival_ns AS arrival_ns,
    o.end_ns AS end_ns
FROM o
LEFT JOIN arrival AS a ON a.order_id = o.order_id
LEFT JOIN start AS s ON s.order_id = o.order_id
LEFT JOIN finish AS fi ON fi.order_id = o.order_id
LEFT JOIN market AS mk ON mk.order_id = o.order_id
LEFT JOIN twap AS tw ON tw.order_id = o.order_id
LEFT JOIN markouts AS mo ON mo.order_id = o.order_id
ORDER BY o.arrival_ns, o.order_id
SETTINGS join_use_nulls = 1
