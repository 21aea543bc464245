"""Alerting: rule files, their evaluation, each alert's state machine and the notification policy.

rule_spec.py (the file format) -> condition.py (the signal language) -> evaluate.py
(one cycle's instances) -> lifecycle.py (pending/firing/resolved/no-data) ->
policy.py (silences, inhibition, grouping, rollbacks) -> repository.py (the store).
"""
