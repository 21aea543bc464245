"""Where notifications leave the process: the durable outbox and its destinations.

`outbox.py` persists every delivery before any attempt and drains them in order per
destination; `slack.py`, `webhooks.py` and `alertmanager.py` each turn one stored
delivery into one request and classify the answer (`results.py`).
"""
