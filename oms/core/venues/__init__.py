"""Venue adapters: where accepted orders go to be matched. Each speaks model commands in and model events out."""
