-- Prices and quantities become Decimal(38, 9): exact decimals (sum(price) is 2099.68, not 2099.6800000000003), nine
-- places (every instrument's precision fits). Rows written as Float64 by earlier versions go through their shortest
-- text form first ('2099.68'), which converts exactly; a direct Float64 -> Decimal cast would truncate 2099.68 to
-- 2099.679999999. Each step is harmless run again (Decimal -> String -> Decimal keeps the value).
ALTER TABLE executions
    MODIFY COLUMN qty String, MODIFY COLUMN price String, MODIFY COLUMN leaves_qty String,
    MODIFY COLUMN cum_qty String
SETTINGS mutations_sync = 2;
ALTER TABLE executions
    MODIFY COLUMN qty Decimal(38, 9), MODIFY COLUMN price Decimal(38, 9), MODIFY COLUMN leaves_qty Decimal(38, 9),
    MODIFY COLUMN cum_qty Decimal(38, 9)
SETTINGS mutations_sync = 2;
ALTER TABLE orders
    MODIFY COLUMN qty Nullable(String), MODIFY COLUMN price Nullable(String),
    MODIFY COLUMN stop_price Nullable(String), MODIFY COLUMN leaves_qty Nullable(String)
SETTINGS mutations_sync = 2;
ALTER TABLE orders
    MODIFY COLUMN qty Nullable(Decimal(38, 9)), MODIFY COLUMN price Nullable(Decimal(38, 9)),
    MODIFY COLUMN stop_price Nullable(Decimal(38, 9)), MODIFY COLUMN leaves_qty Nullable(Decimal(38, 9))
SETTINGS mutations_sync = 2;
ALTER TABLE market_trades MODIFY COLUMN price String, MODIFY COLUMN qty String SETTINGS mutations_sync = 2;
ALTER TABLE market_trades MODIFY COLUMN price Decimal(38, 9), MODIFY COLUMN qty Decimal(38, 9)
SETTINGS mutations_sync = 2;
ALTER TABLE quotes
    MODIFY COLUMN bid Nullable(String), MODIFY COLUMN bid_qty String, MODIFY COLUMN ask Nullable(String),
    MODIFY COLUMN ask_qty String
SETTINGS mutations_sync = 2;
ALTER TABLE quotes
    MODIFY COLUMN bid Nullable(Decimal(38, 9)), MODIFY COLUMN bid_qty Decimal(38, 9),
    MODIFY COLUMN ask Nullable(Decimal(38, 9)), MODIFY COLUMN ask_qty Decimal(38, 9)
SETTINGS mutations_sync = 2;
