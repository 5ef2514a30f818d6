"""Pure pre-trade and post-trade risk checks over an account's state and limits."""
