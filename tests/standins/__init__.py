"""Real servers on loopback that stand in for the services monitor talks to (Slack, webhook receivers,
Alertmanager), recording what they received and checking its shape, plus a manual test clock."""
