"""One module per algorithm; each is thin: declare parameters, read them, run the engine."""
