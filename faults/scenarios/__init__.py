"""One module per fault scenario; each exposes `run(params)` and SHORT / LONG parameters."""
