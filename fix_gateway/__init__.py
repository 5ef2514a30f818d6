"""FIX 4.2 / 4.4 gateway: QuickFIX application, per-version codecs and the exchange simulator."""
