"""monitor: observability and cost-analysis daemon for ML services."""

__version__ = "0.1.0"
