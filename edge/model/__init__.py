"""edge.model: see docs/ARCHITECTURE.md (rooms of the runtime)."""
