"""Target-level metrics (SPIRE, BasicIRSTD, Hungarian conventions), numpy only."""
