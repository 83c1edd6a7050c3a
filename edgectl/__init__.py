"""`edgectl`, the operator's command line: the composition root above `builder` and `fleet`.

One module per command group (`build`, `keys`, `status`, `push`, `remote`); output helpers live in `output`;
`app` wires the groups into one Typer application.
"""
