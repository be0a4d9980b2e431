"""Backend adapters: one file per runtime, each importing its runtime lazily."""
