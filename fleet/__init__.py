"""Topics, messages, the MQTT client, bundle transfer, pushing and status: the fleet's side, shared by the
`edgectl` command line (edgectl/) and the agent (agent/)."""
