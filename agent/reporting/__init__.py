"""What leaves the device: status, events and results through the durable outbox, telemetry, the
status board, Prometheus and systemd notifications."""
