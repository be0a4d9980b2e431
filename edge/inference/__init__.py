"""edge.inference: see docs/ARCHITECTURE.md (rooms of the runtime)."""
