"""Where data enters the pipeline: Prometheus, local NVML, prediction logs."""
