"""The rows of the benchmark table, as data: which model, backend and precision each one measures.

The table is a plan (`RowSpec`s, decided before anything runs) and a result per plan entry
(`Row`, filled in as each one runs or fails). Keeping the plan as data means the first row —
the reference every speed-up is computed against — is fixed by position in one list, a row
can be filtered by `--backends/--precisions` without special cases, and a failing row still
produces a `Row` whose status says why.
"""
from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from edge.model.targets import TARGETS

# backend -> precisions it is measured at, in table order, and the Python module whose presence
# decides whether its rows are planned by default: both from the one target table (edge.model.targets;
# TensorRT has no fp32 row: on a Jetson FP16 is the floating-point baseline).
BACKEND_PRECISIONS: dict[str, tuple[str, ...]] = {t.backend: t.bench_precisions for t in TARGETS.values()}
RUNTIME_MODULES: dict[str, str] = {t.backend: t.runtime_module for t in TARGETS.values()}
MODELS = ("official", "shipped")


@dataclass(frozen=True)
class RowSpec:
    """One planned row: `model` is 'official' (SPIRE's faithful HRPE) or 'shipped' (ours)."""

    name: str
    backend: str
    precision: str
    model: str = "shipped"

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"RowSpec.model must be one of {MODELS}, got {self.model!r}")


@dataclass
class Row:
    """One measured row of the table; `status` is 'ok', 'export failed: …' or 'run failed: …'.

    Accuracy fields are fractions (SPIRE convention: greedy one-to-one matching within 5 px,
    Fa = false targets per pixel); latencies in ms; `speedup` is the first row's end-to-end p50
    over this row's. Unmeasured fields stay None (printed as n/a).
    """

    name: str
    backend: str
    precision: str
    model: str
    status: str = "pending"
    arch: str | None = None
    artifact: str | None = None
    size_mb: float | None = None
    imgsz: int | None = None
    frames: int = 0
    bench: str = ""  # which frames (FrameSet label): the built-in clip, a dataset, synthetic speed frames
    threads: int | None = None
    p: float | None = None
    r: float | None = None
    f1: float | None = None
    fa_per_pixel: float | None = None
    fppi: float | None = None
    infer_ms_p50: float | None = None
    infer_ms_p90: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    stage_ms: dict[str, float] = field(default_factory=dict)
    decode_share: float | None = None
    overhead_share: float | None = None
    fps: float | None = None
    speedup: float | None = None
    power_w: float | None = None
    energy_mj_per_frame: float | None = None
    power_source: str = "n/a"
    device: str = ""
    note: str = ""

    @classmethod
    def from_spec(cls, spec: RowSpec, **kw: Any) -> "Row":
        return cls(name=spec.name, backend=spec.backend, precision=spec.precision,
                   model=spec.model, **kw)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def runtime_available(backend: str) -> bool:
    """True when the backend's runtime module can be imported (found without importing it)."""
    mod = RUNTIME_MODULES.get(backend)
    if mod is None:
        return False
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def plan_rows(backends: list[str] | None = None, precisions: list[str] | None = None,
              official: bool = True, available=runtime_available) -> list[RowSpec]:
    """The rows to measure, first row first.

    Default (`backends=None`): torch (official architecture, then shipped) when torch is
    installed, then the shipped model on every backend whose runtime is installed — except
    TensorRT, planned only where `tensorrt` imports (a Jetson or a GPU box). Backends named
    explicitly are planned even when their runtime is missing, so the table says why they fail.
    `precisions` filters the non-torch rows; the torch rows are the FP32 references.
    """
    explicit = backends is not None
    names = list(backends) if explicit else list(BACKEND_PRECISIONS)
    specs: list[RowSpec] = []
    torch_ok = available("torch")
    if official and torch_ok:
        specs.append(RowSpec("torch fp32 official-SPIRE", "torch", "fp32", "official"))
    if torch_ok and (not explicit or "torch" in names):
        specs.append(RowSpec("torch fp32 shipped", "torch", "fp32", "shipped"))
    for backend in names:
        if backend == "torch":
            continue
        if not explicit and not available(backend):
            continue
        # an unknown name still gets a row, whose status will say what the known backends are
        for prec in BACKEND_PRECISIONS.get(backend, tuple(precisions or ("fp32",))):
            if precisions and prec not in precisions:
                continue
            specs.append(RowSpec(f"{backend} {prec} shipped", backend, prec, "shipped"))
    return specs


def apply_speedups(rows: list[Row]) -> None:
    """speedup = e2e p50 of the first row measured (ok) on the same frames (`bench`) / this row's, in place."""
    refs: dict[str, float] = {}
    for r in rows:
        if r.ok and r.latency_ms_p50 and r.bench not in refs:
            refs[r.bench] = r.latency_ms_p50
    for r in rows:
        ref = refs.get(r.bench)
        r.speedup = (ref / r.latency_ms_p50) if (ref and r.ok and r.latency_ms_p50) else None
