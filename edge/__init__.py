"""SPIRE-Edge runtime: the numpy/opencv half that runs on the device.

Everything here imports only numpy, opencv and the standard library (backend runtimes and
matplotlib only lazily), so a Jetson, an Intel box or a Raspberry Pi needs no torch. Training
imports the same preprocessing, codec and metrics from here, so the numbers measured at
training time and on the device come from the same code.

The Python API, three lines (the names load on first use, so `import edge` stays fast):

    from edge import Predictor
    model = Predictor("spire-s")      # a ladder name, an artifact folder, or a best.pt (torch installed)
    points = model(frame)             # Points: .xy, .scores, .to_records(), .to_json()

`Tracker` turns per-frame Points into tracks; `Results` collects a run's points (`.to_csv()`).
"""
__version__ = "0.1.0"

# public name -> "module:attribute", imported on first access (PEP 562)
_LAZY = {
    "Predictor": "edge.inference.predictor:Predictor",
    "Tracker": "edge.tracking.tracker:Tracker",
    "TrackerConfig": "edge.tracking.tracker:TrackerConfig",
    "Points": "edge.inference.points:Points",
    "Results": "edge.outputs.results:Results",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'edge' has no attribute {name!r}")
    import importlib

    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])
