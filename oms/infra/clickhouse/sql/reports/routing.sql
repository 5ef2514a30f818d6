-- Order routing as SEC Rule 606(a)(1) (17 CFR 242.606) asks for it: per calendar month and section, the order mix,
-- and for each venue the orders routed there and the net payment for them. Parameters (clickhouse-client:
-- --param_<name>=<value>):
--   from_ns, to_ns Int64          orders accepted (routed) in [from_ns, to_ns), ns since the epoch (UTC)
--   account String                '' for all
--   mic_venues, mic_codes Array(String)   the ISO 10383 MIC of each venue named; other venues get '' (never a guess)
--   fee_venues Array(String), fee_bps Array(Float64), default_fee_bps Float64   fee per venue in bps of notional,
--                                 positive a fee the broker pays, negative a rebate it receives
--   quote_max_age_ns Int64        how old the quote a limit order's marketability is judged against may be
--
-- Routed order: an `accepted` row with a venue (the OMS's routing decision), executed or not; rows without one
-- (written before the store recorded venues) were not routed. Month: of the acceptance, UTC. Section: asset_class
-- (the rule's sections are S&P 500 stocks, other NMS stocks and options; the store knows no index membership).
-- Category, from the accepted row:
--   market                MARKET
--   marketable_limit      LIMIT, a buy at or above the ask (a sell at or below the bid) of the symbol's latest
--                         quote on any venue strictly before acceptance, at most quote_max_age_ns old
--   non_marketable_limit  any other LIMIT. A limit order whose side to take was not quoted then (no quote within the
--                         age, or a one-sided book without that side) cannot be marketable against a best offer
--                         (bid) that did not exist: it is non-marketable, and counted in unquoted_limit_orders
--   other                 STOP, STOP_LIMIT and any other type
-- Directed: the client named the venue. The OMS takes no venue from its clients, so every order is non-directed
-- (see best_ex.sql); percentages are of non-directed orders, as the rule's are.
-- Venues: ranked by non-directed orders routed (then by name); the ten first and any with 5 % or more are listed.
--   pct_orders, pct_market, ...   orders (of that category) routed to the venue / all non-directed ones (of that
--                                 category) in the month and section; 0 when the month had none of the category
--   net_payment_<category>       -Σ qty * price * fee_bps(execution venue) / 1e4 over every execution of those
--                                 orders (whenever executed; an order executes where it was routed): positive a net
--                                 payment RECEIVED (rebates), negative a net payment PAID (fees), in the instrument's
--                                 currency (USD for NMS stocks)
--   net_payment_<category>_cph   the same in cents per hundred shares executed (amount * 1e4 / executed quantity);
--                                 0 when nothing executed
-- The columns after net_payment_other_cph are the counts behind the figures.
WITH
    routed AS (
        SELECT order_id, symbol, asset_class, side, ord_type, toFloat64(price) AS price, venue, ts_ns,
               formatDateTime(fromUnixTimestamp64Nano(ts_ns, 'UTC'), '%Y-%m') AS month,
               toUInt8(0) AS directed
        FROM orders FINAL
        WHERE event = 'accepted' AND venue != '' AND ts_ns >= {from_ns:Int64} AND ts_ns < {to_ns:Int64}
          AND ({account:String} = '' OR account = {account:String})
    ),
    books AS (
        -- every top of book, one-sided ones too: the book as it stood
        SELECT symbol, ts_ns, argMax(tuple(toFloat64(bid), toFloat64(ask)), (src_ms, src_seq)) AS top
        FROM quotes FINAL
        WHERE symbol IN (SELECT symbol FROM routed)
        GROUP BY symbol, ts_ns
    ),
    classified AS (
        SELECT r.order_id AS order_id, r.month AS month, r.asset_class AS asset_class, r.venue AS venue,
               r.directed AS directed,
               b.ts_ns IS NOT NULL AND r.ts_ns - b.ts_ns <= {quote_max_age_ns:Int64} AS fresh,
               if(r.side = 'BUY', b.top.2, b.top.1) AS touch,  -- the side a buy (sell) would take: ask (bid)
               r.ord_type = 'LIMIT' AND NOT (fresh AND touch IS NOT NULL) AS unquoted,
               multiIf(r.ord_type = 'MARKET', 'market',
                       r.ord_type != 'LIMIT', 'other',
                       NOT unquoted AND if(r.side = 'BUY', r.price >= touch, r.price <= touch), 'marketable_limit',
                       'non_marketable_limit') AS category
        FROM routed AS r
        ASOF LEFT JOIN books AS b ON b.symbol = r.symbol AND r.ts_ns > b.ts_ns
    ),
    paid AS (
        SELECT order_id, toFloat64(sum(qty)) AS executed,
               -sum(toFloat64(qty * price)
                    * transform(toString(venue), {fee_venues:Array(String)}, {fee_bps:Array(Float64)},
                                {default_fee_bps:Float64})) / 1e4 AS payment
        FROM executions FINAL
        WHERE order_id IN (SELECT order_id FROM routed)
        GROUP BY order_id
    ),
    o AS (
        SELECT c.month AS month, c.asset_class AS asset_class, c.venue AS venue, c.directed AS directed,
               c.category AS category, c.unquoted AS unquoted, coalesce(p.executed, 0) AS executed,
               coalesce(p.payment, 0) AS payment
        FROM classified AS c
        LEFT JOIN paid AS p ON p.order_id = c.order_id
    ),
    sections AS (
        SELECT month, asset_class, count() AS all_orders, countIf(directed = 0) AS ndo,
               countIf(directed = 0 AND category = 'market') AS market_orders,
               countIf(directed = 0 AND category = 'marketable_limit') AS marketable_limit_orders,
               countIf(directed = 0 AND category = 'non_marketable_limit') AS non_marketable_limit_orders,
               countIf(directed = 0 AND category = 'other') AS other_orders,
               countIf(directed = 0 AND unquoted) AS unquoted_limit_orders
        FROM o
        GROUP BY month, asset_class
    ),
    venues AS (
        SELECT month, asset_class, venue, count() AS venue_orders,
               countIf(category = 'market') AS v_market, countIf(category = 'marketable_limit') AS v_marketable,
               countIf(category = 'non_marketable_limit') AS v_non_marketable, countIf(category = 'other') AS v_other,
               sumIf(payment, category = 'market') AS pay_market,
               sumIf(executed, category = 'market') AS qty_market,
               sumIf(payment, category = 'marketable_limit') AS pay_marketable,
               sumIf(executed, category = 'marketable_limit') AS qty_marketable,
               sumIf(payment, category = 'non_marketable_limit') AS pay_non_marketable,
               sumIf(executed, category = 'non_marketable_limit') AS qty_non_marketable,
               sumIf(payment, category = 'other') AS pay_other,
               sumIf(executed, category = 'other') AS qty_other
        FROM o
        WHERE directed = 0
        GROUP BY month, asset_class, venue
    ),
    ranked AS (
        SELECT v.*, s.all_orders AS all_orders, s.ndo AS ndo, s.market_orders AS market_orders,
               s.marketable_limit_orders AS marketable_limit_orders,
               s.non_marketable_limit_orders AS non_marketable_limit_orders, s.other_orders AS other_orders,
               s.unquoted_limit_orders AS unquoted_limit_orders,
               row_number() OVER (PARTITION BY v.month, v.asset_class ORDER BY v.venue_orders DESC, v.venue)
                   AS venue_rank
        FROM venues AS v
        INNER JOIN sections AS s ON s.month = v.month AND s.asset_class = v.asset_class
    )
SELECT
    month,
    asset_class,
    -- (a)(1)(i): the month's order mix
    100 * ndo / all_orders AS pct_ndo,
    if(ndo > 0, 100 * market_orders / ndo, 0) AS pct_ndo_market,
    if(ndo > 0, 100 * marketable_limit_orders / ndo, 0) AS pct_ndo_marketable_limit,
    if(ndo > 0, 100 * non_marketable_limit_orders / ndo, 0) AS pct_ndo_non_marketable_limit,
    if(ndo > 0, 100 * other_orders / ndo, 0) AS pct_ndo_other,
    -- (a)(1)(ii): the venues
    venue_rank AS rank,
    venue,
    transform(toString(venue), {mic_venues:Array(String)}, {mic_codes:Array(String)}, '') AS mic,
    100 * venue_orders / ndo AS pct_orders,
    if(market_orders > 0, 100 * v_market / market_orders, 0) AS pct_market,
    if(marketable_limit_orders > 0, 100 * v_marketable / marketable_limit_orders, 0) AS pct_marketable_limit,
    if(non_marketable_limit_orders > 0, 100 * v_non_marketable / non_marketable_limit_orders, 0)
        AS pct_non_marketable_limit,
    if(other_orders > 0, 100 * v_other / other_orders, 0) AS pct_other,
    -- (a)(1)(iii): net payment received (+) or paid (-), in total and in cents per hundred shares executed
    pay_market AS net_payment_market,
    if(qty_market > 0, pay_market * 1e4 / qty_market, 0) AS net_payment_market_cph,
    pay_marketable AS net_payment_marketable_limit,
    if(qty_marketable > 0, pay_marketable * 1e4 / qty_marketable, 0) AS net_payment_marketable_limit_cph,
    pay_non_marketable AS net_payment_non_marketable_limit,
    if(qty_non_marketable > 0, pay_non_marketable * 1e4 / qty_non_marketable, 0)
        AS net_payment_non_marketable_limit_cph,
    pay_other AS net_payment_other,
    if(qty_other > 0, pay_other * 1e4 / qty_other, 0) AS net_payment_other_cph,
    -- the counts behind them
    all_orders AS routed_orders,
    market_orders,
    marketable_limit_orders,
    non_marketable_limit_orders,
    other_orders,
    unquoted_limit_orders,
    venue_orders
FROM ranked
WHERE venue_rank <= 10 OR 100 * venue_orders / ndo >= 5
ORDER BY month, asset_class, rank
SETTINGS join_use_nulls = 1
