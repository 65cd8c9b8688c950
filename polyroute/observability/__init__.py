"""Observability: Prometheus metrics (`metrics`), structured logs and the access log
(`logs`), the request log for replay (`request_log`), OpenTelemetry traces (`tracing`),
wired into a gateway by `telemetry.Telemetry`; configured by the `observability:` section
(`settings`). Kept import-light: the config schema imports `settings` from here."""
