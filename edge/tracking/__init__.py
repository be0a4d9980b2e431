"""edge.tracking: see docs/ARCHITECTURE.md (rooms of the runtime)."""
