"""The windows that statistics are computed over, defined once for every store and reader."""

from __future__ import annotations

THROUGHPUT_WINDOW = 60.0
"""Seconds over which `finished_last_minute` counts finished orders; throughput per second is
that count divided by this window."""

RECENT_WAITS = 1000
"""How many of a tier's most recent starts its wait percentiles are computed from."""

LONGEST_WAITING = 1000
"""How many of a tier's longest-waiting queued orders its waits include besides the starts."""

BUSIEST_GROUPS = 10
"""How many fair-share groups (key and customer) queue health reports, busiest first."""

OUTCOME_WINDOW = 10.0
"""Seconds over which the dashboard's finished and failed per second are counted."""
