"""Low-latency order management system: typed messages, the order state machine, risk, venues and gateways."""
