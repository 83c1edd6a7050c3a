"""The device's inference API: the models this agent serves, to other programs, in the protocols their clients
already speak (KServe v2 / Triton over HTTP and gRPC, TF Serving REST, DeepStack), through the same engines the
cameras use. Importing this package imports no web framework: the server is started by `run.py`."""
