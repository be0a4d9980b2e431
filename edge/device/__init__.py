"""edge.device: see docs/ARCHITECTURE.md (rooms of the runtime)."""
