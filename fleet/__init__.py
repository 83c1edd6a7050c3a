"""Topics, messages, the MQTT client, bundle transfer and the `edgectl` command line."""
