-- Per-parent transaction cost analysis of algo parent orders (TWAP/VWAP/POV/iceberg/bracket). One row per parent
-- accepted in [from_ns, to_ns) (optionally one account, symbol, kind or parent). Parameters (clickhouse-client:
-- --param_<name>=<value>):
--   from_ns, to_ns Int64        acceptance window, ns since the epoch (UTC)
--   account, symbol String      '' for all
--   kind String                 TWAP | VWAP | POV | ICEBERG | BRACKET, '' for all
--   parent_id String            '' for all
--   fee_venues Array(String), fee_bps Array(Float64), default_fee_bps Float64   fees per venue, bps of notional
--   arrival_max_age_ns Int64    how old the market data behind an arrival price may be
--
-- The parent is measured as ONE order, by the definitions of tca_orders.sql, against its OWN arrival: not as the sum
-- of its children's costs against theirs (a child's arrival is already moved by the parent's earlier children).
-- Its children are the orders whose `accepted` row names it (orders.parent_id, same account and symbol); its
-- executions are their fills on the parent's side (a bracket's exits take the other side: they close the position
-- the entry opened and are not part of the parent's cost).
-- Sign convention: every *_bps figure is a COST, positive when worse than the benchmark, for buys and sells alike:
-- side * (price - benchmark) / benchmark * 1e4, side = +1 for a buy, -1 for a sell.
-- Arrival price (Kissell): the mid of the book as it stood just before the PARENT's acceptance (its latest quote,
-- whichever sides it had), when two-sided and at most arrival_max_age_ns old; else the last print before it within
-- the same age; else NULL. arrival_source says which: 'mid', 'last_trade' or 'none'. The acceptance (arrival_ns) is
-- the parent command's time; for a command journaled without one, its journal entry's (ms), or the parent's first
-- record stamped by the engine when that is earlier.
-- The parent's life is [arrival_ns, end_ns]: from its acceptance to its last event on its side (a fill, cancel,
-- expiry or replace of a child on its side, a child sent or ended, its cancel request or close); the last event so
-- far for a working parent.
-- status is the parent's as the algo engine defines it (oms.core.algos.parents), from its journal rows and its
-- children: FILLED (the whole quantity; a bracket: the exits closed what the entry filled) once no child works;
-- otherwise, after a cancel request or a close, PENDING_CANCEL while children work, then the status it closes
-- with (CANCELED, EXPIRED, STOPPED); otherwise PARTIALLY_FILLED or NEW.
WITH
    submitted AS (
        SELECT parent_id, kind, account, symbol, asset_class, side, if(side = 'BUY', 1, -1) AS sgn,
               toFloat64(assumeNotNull(qty)) AS parent_qty, toFloat64(price) AS limit_price, ts_ns, ts_source
        FROM parents FINAL
        WHERE event = 'accepted' AND ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
          AND ({account:String} = '' OR account = {account:String})
          AND ({symbol:String} = '' OR symbol = {symbol:String})
          AND ({kind:String} = '' OR kind = {kind:String})
          AND ({parent_id:String} = '' OR parent_id = {parent_id:String})
        ORDER BY src_ms, src_seq
        LIMIT 1 BY parent_id
    ),
    own AS (
        -- the parent's journal rows after its acceptance
        SELECT parent_id, event, status, child_cl_ord_id, side, ts_ns, ts_source, src_ms, src_seq
        FROM parents FINAL
        WHERE event != 'accepted' AND parent_id IN (SELECT parent_id FROM submitted)
    ),
    accepted AS (
        -- A command journaled without a time has its entry's, to the ms and by Redis's clock: never later than the
        -- parent's first record stamped by the engine (its first child goes out in the step that accepts it, stamped
        -- with the acceptance time), so no event of the parent precedes its arrival.
        SELECT u.parent_id AS parent_id, u.kind AS kind, u.account AS account, u.symbol AS symbol,
               u.asset_class AS asset_class, u.side AS side, u.sgn AS sgn, u.parent_qty AS parent_qty,
               u.limit_price AS limit_price,
               if(u.ts_source = 'entry' AND f.first_ns IS NOT NULL, least(u.ts_ns, assumeNotNull(f.first_ns)), u.ts_ns)
                   AS arrival_ns
        FROM submitted AS u
        LEFT JOIN (SELECT parent_id, min(ts_ns) AS first_ns FROM own WHERE ts_source = 'record' GROUP BY parent_id)
            AS f ON f.parent_id = u.parent_id
    ),
    sent AS (
        SELECT parent_id, child_cl_ord_id, any(side) AS child_side
        FROM own
        WHERE event = 'child_sent'
        GROUP BY parent_id, child_cl_ord_id
    ),
    own_last AS (
        -- the last of the parent's own rows that is not about a child on the other side
        SELECT w.parent_id AS parent_id, max(w.ts_ns) AS last_ns
        FROM own AS w
        INNER JOIN accepted AS a ON a.parent_id = w.parent_id
        LEFT JOIN sent AS s ON s.parent_id = w.parent_id AND s.child_cl_ord_id = w.child_cl_ord_id
        WHERE w.child_cl_ord_id = '' OR s.child_side = a.side
        GROUP BY w.parent_id
    ),
    closing AS (
        -- the first cancel request or close: the status the parent ends with unless it fills first
        SELECT parent_id,
               argMin(if(event = 'cancel_requested', 'CANCELED', status), (src_ms, src_seq)) AS closing_status
        FROM own
        WHERE event IN ('cancel_requested', 'closing')
        GROUP BY parent_id
    ),
    children AS (
        SELECT c.order_id AS order_id, c.parent_id AS parent_id, c.cl_ord_id AS cl_ord_id, c.side = a.side AS own_side
        FROM (SELECT order_id, parent_id, account, symbol, side, cl_ord_id
              FROM orders FINAL
              WHERE event = 'accepted' AND parent_id IN (SELECT parent_id FROM accepted)
              GROUP BY order_id, parent_id, account, symbol, side, cl_ord_id) AS c
        INNER JOIN accepted AS a ON a.parent_id = c.parent_id AND a.account = c.account AND a.symbol = c.symbol
    ),
    child_events AS (
        SELECT order_id, max(ts_ns) AS last_ns, countIf(event IN ('canceled', 'expired')) > 0 AS ended
        FROM orders FINAL
        WHERE order_id IN (SELECT order_id FROM children) AND event NOT IN ('cancel_rejected', 'replace_rejected')
        GROUP BY order_id
    ),
    child_fills AS (
        SELECT order_id, count() AS n_fills, toFloat64(sum(qty)) AS filled, toFloat64(sum(qty * price)) AS notional,
               min(ts_ns) AS first_ns, max(ts_ns) AS last_ns, min(leaves_qty) = 0 AS complete,
               sum(toFloat64(qty * price) * transform(venue, {fee_venues:Array(String)}, {fee_bps:Array(Float64)},
                                                      {default_fee_bps:Float64})) / 1e4 AS fees
        FROM executions FINAL
        WHERE order_id IN (SELECT order_id FROM children)
        GROUP BY order_id
    ),
    kids AS (
        -- a child works until it is canceled, expires, fills in full, or the parent's journal records it ended
        SELECT c.parent_id AS parent_id, c.own_side AS own_side, coalesce(f.n_fills, 0) AS child_n_fills,
               coalesce(f.filled, 0) AS child_filled, coalesce(f.notional, 0) AS child_notional,
               f.first_ns AS child_first_ns, coalesce(f.fees, 0) AS child_fees,
               greatest(e.last_ns, coalesce(f.last_ns, 0)) AS child_last_ns,
               NOT (e.ended OR coalesce(f.complete, false) OR d.cl IS NOT NULL) AS child_working
        FROM children AS c
        INNER JOIN child_events AS e ON e.order_id = c.order_id
        LEFT JOIN child_fills AS f ON f.order_id = c.order_id
        LEFT JOIN (SELECT DISTINCT parent_id, child_cl_ord_id AS cl FROM own WHERE event = 'child_done') AS d
            ON d.parent_id = c.parent_id AND d.cl = c.cl_ord_id
    ),
    tally AS (
        SELECT parent_id, countIf(own_side) AS n_children, sumIf(child_n_fills, own_side) AS n_fills,
               sumIf(child_filled, own_side) AS filled, sumIf(child_notional, own_side) AS notional,
               minIf(child_first_ns, own_side) AS first_fill_ns, sumIf(child_fees, own_side) AS fees,
               maxIf(child_last_ns, own_side) AS last_ns, sumIf(child_filled, NOT own_side) AS exit_filled,
               countIf(child_working) AS working, countIf(child_working AND own_side) AS working_own
        FROM kids
        GROUP BY parent_id
    ),
    p AS (
        SELECT a.parent_id AS parent_id, a.kind AS kind, a.account AS account, a.symbol AS symbol,
               a.asset_class AS asset_class, a.side AS side, a.sgn AS sgn, a.parent_qty AS parent_qty,
               a.limit_price AS limit_price, a.arrival_ns AS arrival_ns,
               coalesce(t.n_children, 0) AS n_children, coalesce(t.n_fills, 0) AS n_fills,
               coalesce(t.filled, 0) AS filled, coalesce(t.notional, 0) AS notional,
               if(coalesce(t.n_fills, 0) > 0, t.first_fill_ns, NULL) AS first_fill_ns, coalesce(t.fees, 0) AS fees,
               greatest(a.arrival_ns, coalesce(t.last_ns, 0), coalesce(ol.last_ns, 0)) AS end_ns,
               -- quantities are decimal conversions: a remainder below 1e-9 of the parent (far below a lot) is none
               if(a.parent_qty - filled <= a.parent_qty * 1e-9, 0, a.parent_qty - filled) AS leaves,
               coalesce(t.working, 0) AS working,
               if(a.kind = 'BRACKET',
                  coalesce(t.working_own, 0) = 0 AND filled > 0 AND coalesce(t.exit_filled, 0) >= filled * (1 - 1e-9),
                  leaves = 0) AS is_filled,
               multiIf(is_filled AND working = 0, 'FILLED',
                       cl.closing_status IS NOT NULL AND working > 0, 'PENDING_CANCEL',
                       cl.closing_status IS NOT NULL, assumeNotNull(cl.closing_status),
                       filled > 0, 'PARTIALLY_FILLED',
                       'NEW') AS status
        FROM accepted AS a
        LEFT JOIN tally AS t ON t.parent_id = a.parent_id
        LEFT JOIN own_last AS ol ON ol.parent_id = a.parent_id
        LEFT JOIN closing AS cl ON cl.parent_id = a.parent_id
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
        SELECT p.parent_id AS parent_id,
               multiIf(b.ts_ns IS NOT NULL AND b.top.1 IS NOT NULL AND b.top.2 IS NOT NULL
                           AND p.arrival_ns - b.ts_ns <= {arrival_max_age_ns:Int64}, 'mid',
                       t.ts_ns IS NOT NULL AND p.arrival_ns - t.ts_ns <= {arrival_max_age_ns:Int64}, 'last_trade',
                       'none') AS arrival_source,
               multiIf(arrival_source = 'mid', (b.top.1 + b.top.2) / 2, arrival_source = 'last_trade', t.px, NULL)
                   AS arrival_px
        FROM p
        ASOF LEFT JOIN books AS b ON b.symbol = p.symbol AND p.arrival_ns > b.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = p.symbol AND p.arrival_ns > t.ts_ns
    ),
    start AS (
        SELECT p.parent_id AS parent_id, coalesce(m.mid, t.px) AS start_px
        FROM (SELECT parent_id, symbol, assumeNotNull(first_fill_ns) AS first_ns FROM p WHERE n_fills > 0) AS p
        ASOF LEFT JOIN mids AS m ON m.symbol = p.symbol AND p.first_ns > m.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = p.symbol AND p.first_ns > t.ts_ns
    ),
    finish AS (
        SELECT p.parent_id AS parent_id, coalesce(m.mid, t.px) AS end_px, t.px AS end_last_px
        FROM p
        ASOF LEFT JOIN mids AS m ON m.symbol = p.symbol AND p.end_ns >= m.ts_ns
        ASOF LEFT JOIN lasts AS t ON t.symbol = p.symbol AND p.end_ns >= t.ts_ns
    ),
    market AS (
        -- interval VWAP and volume of every print in [arrival_ns, end_ns]
        SELECT p.parent_id AS parent_id, sum(t.qty * t.price) / sum(t.qty) AS vwap, sum(t.qty) AS volume
        FROM p
        INNER JOIN (SELECT symbol, ts_ns, toFloat64(price) AS price, toFloat64(qty) AS qty
                    FROM market_trades FINAL
                    WHERE symbol IN (SELECT symbol FROM accepted)) AS t ON t.symbol = p.symbol
        WHERE t.ts_ns >= p.arrival_ns AND t.ts_ns <= p.end_ns
        GROUP BY p.parent_id
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
        SELECT p.parent_id AS parent_id,
               sum(g.px * toFloat64(least(g.t1, p.end_ns) - greatest(g.t0, p.arrival_ns))) AS weighted,
               sum(toFloat64(least(g.t1, p.end_ns) - greatest(g.t0, p.arrival_ns))) AS covered
        FROM p
        INNER JOIN segments AS g ON g.symbol = p.symbol
        WHERE g.t0 < p.end_ns AND g.t1 > p.arrival_ns
        GROUP BY p.parent_id
    )
SELECT
    p.parent_id AS parent_id,
    p.kind AS kind,
    p.account AS account,
    p.symbol AS symbol,
    p.asset_class AS asset_class,
    p.side AS side,
    p.status AS status,
    p.limit_price AS limit_price,
    p.parent_qty AS parent_qty,
    p.filled AS filled_qty,
    p.filled / p.parent_qty AS fill_rate,
    p.n_children AS n_children,
    p.n_fills AS n_fills,
    if(p.filled > 0, p.notional / p.filled, NULL) AS avg_px,
    a.arrival_px AS arrival_px,
    a.arrival_source AS arrival_source,
    mk.vwap AS vwap,
    if(tw.covered > 0, tw.weighted / tw.covered, fi.end_last_px) AS twap,
    p.sgn * (avg_px - arrival_px) / arrival_px * 1e4 AS slippage_arrival_bps,
    p.sgn * (avg_px - vwap) / vwap * 1e4 AS slippage_vwap_bps,
    p.sgn * (avg_px - twap) / twap * 1e4 AS slippage_twap_bps,
    -- Perold implementation shortfall against a paper order of parent_qty at the parent's arrival price, in bps of
    -- its value
    p.parent_qty * arrival_px AS paper_notional,
    if(p.filled > 0, p.sgn * (s.start_px - arrival_px) * p.filled, 0) / paper_notional * 1e4 AS is_delay_bps,
    if(p.filled > 0, p.sgn * (p.notional - s.start_px * p.filled), 0) / paper_notional * 1e4 AS is_realized_bps,
    if(p.leaves > 0, p.sgn * (fi.end_px - arrival_px) * p.leaves, 0) / paper_notional * 1e4 AS is_opportunity_bps,
    p.fees / paper_notional * 1e4 AS is_fees_bps,
    is_delay_bps + is_realized_bps + is_opportunity_bps + is_fees_bps AS is_total_bps,
    s.start_px AS start_px,
    fi.end_px AS end_px,
    p.fees AS fees,
    if(mk.volume > 0, p.filled / mk.volume, NULL) AS participation,
    p.arrival_ns AS arrival_ns,
    p.end_ns AS end_ns
FROM p
LEFT JOIN arrival AS a ON a.parent_id = p.parent_id
LEFT JOIN start AS s ON s.parent_id = p.parent_id
LEFT JOIN finish AS fi ON fi.parent_id = p.parent_id
LEFT JOIN market AS mk ON mk.parent_id = p.parent_id
LEFT JOIN twap AS tw ON tw.parent_id = p.parent_id
ORDER BY p.arrival_ns, p.parent_id
SETTINGS join_use_nulls = 1
