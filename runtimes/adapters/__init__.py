"""One module per runtime. Nothing here imports a runtime library until an adapter is used."""
