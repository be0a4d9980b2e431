"""`python -m quantize.qat`: fake-quantised fine-tuning where post-training INT8 loses accuracy.

Why this flow: it is the one that works with torch 2.13 — pt2e, now in torchao 0.18.
BatchNorm is folded into the convolutions first (left in, it stays in the graph and INT8 runs
slower than FP32); then `torch.export` (dynamic batch and size, so training crops and
native-resolution validation frames both run) → `prepare_qat_pt2e` → fine-tune with
`spire.train`'s own data pipeline, loop (`spire.engine.train_one_epoch`) and validation
(`spire.train.validate`, model selection on validation F1) → `convert_pt2e` →
`torch.onnx.export(dynamo=True)`. The older FX QAT path silently drops activation quantization
on export, so it is not used. Quantizer: litert-torch's pt2e quantizer (per-channel symmetric
weights, per-tensor activations, head left FP32); torchao's X86InductorQuantizer fails to
annotate HRPE's blocks here ("Input partition has more than one output node").

Artifacts (same layout, sidecars and fidelity report as `quantize.ptq`):
- onnxruntime: the QDQ export with activations re-expressed as uint8 (exactly the same grid),
  the fast combination on x86; OpenVINO loads it too.
- openvino: that QDQ model converted to IR (FakeQuantize ops).
- tensorrt: the same QDQ model made signed-symmetric (`symmetrize_qdq`), checked offline.

    python -m quantize.qat --weights W --data PATH --epochs N [--out DIR]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import tempfile
import time
from pathlib import Path

from edge.codecs import build_codec
from edge.errors import SpireEdgeError
from edge.preprocess import PreprocessConfig
from export.common import load_source, quiet
from quantize.recipes import RECIPES, check_runtime, resolve_backends

QAT_BACKENDS = tuple(n for n, r in RECIPES.items() if r.qat)  # onnxruntime, openvino, tensorrt


def _fake_quant_model(model, channels: int, imgsz: int, ignored_scope: tuple[str, ...] = ()):
    """BN-folded, exported (dynamic N/H/W), QAT-prepared model wrapped so .train()/.eval() work."""
    import torch
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from quantize.tflite_int8 import make_quantizer
    from spire.models import fuse_bn

    folded = fuse_bn(model).eval()
    x = torch.zeros(2, channels, imgsz, imgsz)
    dims = {0: torch.export.Dim("batch", min=1, max=256), 2: 32 * torch.export.Dim("h32", min=1, max=128),
            3: 32 * torch.export.Dim("w32", min=1, max=128)}
    gm = torch.export.export(folded, (x,), dynamic_shapes=(dims,)).module()
    prepared = prepare_qat_pt2e(gm, make_quantizer(True, tuple(ignored_scope), is_qat=True))

    class FakeQuantNet(torch.nn.Module):
        """nn.Module face for the pt2e graph: train()/eval() switch its fake-quant/observer modes."""

        def __init__(self, g):
            super().__init__()
            self.g = g

        def forward(self, x):
            return self.g(x)

        def train(self, mode: bool = True):
            (move_exported_model_to_train if mode else move_exported_model_to_eval)(self.g)
            self.training = mode
            return self

    return FakeQuantNet(prepared)


def _count_fake_quant(net) -> int:
    return sum(1 for m in net.modules() if "FakeQuantize" in type(m).__name__)


def finetune(src, data: list[str], epochs: int, out: Path, split: str = "train", val_data: str | None = None,
             val_split: str = "val", batch: int = 8, lr: float = 1e-4, steps: int = 0, max_val_frames: int = 0,
             seed: int = 0, threads: int | None = None, ignored_scope: tuple[str, ...] = (), quiet: bool = False):
    """QAT fine-tuning from the FP32 model of `src`; returns (best fake-quant net, history, info)."""
    import torch
    from tqdm import tqdm

    from spire import engine
    from spire.augment import AugmentConfig
    from spire.data import PlanSampler, Reporter, TrainDataset, collate_skip
    from spire.train import validate
    from spire.train_config import TrainConfig
    from spire.train_data import build_data

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)

    # The FP32 run's crops, sampling and zoom carry over (its background share sets the false-alarm
    # rate); the model is exported at its deployed size (src.imgsz, edge.contract), trained on crops.
    trained = src.training or {}
    crop = int(trained.get("imgsz") or src.imgsz)
    pre = dataclasses.replace(PreprocessConfig.from_dict(src.preprocess), imgsz=crop)
    codec = build_codec({**src.codec, "input_size": crop})
    extra = {}
    if "bg_ratio" in trained:
        extra["bg_ratio"] = float(trained["bg_ratio"])
    if (trained.get("augment") or {}).get("zoom"):
        extra["zoom"] = tuple(trained["augment"]["zoom"])
    cfg = TrainConfig(data=[str(d) for d in data], train_split=split, val_data=val_data, val_split=val_split,
                      imgsz=crop, epochs=epochs, batch=batch, lr=lr, max_val_frames=max_val_frames,
                      seed=seed, out=str(out), quiet=quiet, **extra)
    reporter = Reporter()
    store, val_sets, split_info, _ = build_data(cfg, False, pre.channels, reporter, quiet)
    aug = AugmentConfig(zoom=cfg.zoom, dihedral=True, crop=None if pre.scale_up else crop)
    ds = TrainDataset(store, pre, codec, aug, seed)
    sampler = PlanSampler(store, seed, cfg.bg_ratio)
    net = _fake_quant_model(src.model, pre.channels, crop, ignored_scope)
    info = engine.DistInfo()
    val_mode = "resize" if pre.scale_up else "native"  # spire.train's validation of such a model
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    per_epoch = -(-sampler.epoch_len() // batch)
    n_steps = min(per_epoch, steps) if steps else per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * n_steps), eta_min=lr * 0.01)
    history, best, best_state, best_thr = [], -math.inf, None, None
    out.mkdir(parents=True, exist_ok=True)
    print(f"qat: {src.arch} on {crop} px crops, exported at {src.imgsz} px, {len(store)} training frames, {split_info['val_frames']} validation "
          f"frames, {_count_fake_quant(net)} fake-quant modules, {epochs} epoch(s) x {n_steps} step(s), lr {lr:g}")
    for epoch in range(epochs):
        t0 = time.monotonic()
        sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, collate_fn=collate_skip)
        done = {"n": 0}

        def should_stop() -> bool:
            done["n"] += 1
            sched.step()
            return bool(steps) and done["n"] >= steps

        with tqdm(total=n_steps, desc=f"qat epoch {epoch + 1}/{epochs}", unit="batch", leave=False,
                  disable=quiet) as bar:
            r = engine.train_one_epoch(net, loader, opt, device=info.device, should_stop=should_stop, progress=bar)
        val = validate(net, val_sets, pre, codec, info, val_mode, reporter, max_val_frames, None, quiet)
        row = {"epoch": epoch + 1, "lr": opt.param_groups[0]["lr"], "train_loss": r["loss"],
               **{f"val_{k}": v for k, v in val.items()}, "seconds": time.monotonic() - t0}
        history.append(row)
        print(f"qat epoch {epoch + 1}: loss {r['loss']:.4g}, val P {val['precision']:.3f} "
              f"R {val['recall']:.3f} F1 {val['f1']:.4f} ({row['seconds']:.0f} s)")
        if val["f1"] > best:
            best, best_state, best_thr = val["f1"], copy.deepcopy(net.state_dict()), val.get("thr")
    engine.write_log(out / "log.csv", history)
    net.load_state_dict(best_state)
    return net, history, {"split": split_info, "best_val_f1": best, "best_val_thr": best_thr,
                          "fake_quant_modules": _count_fake_quant(net)}


def export_qdq(net, channels: int, imgsz: int, path: Path) -> Path:
    """convert_pt2e + dynamo ONNX export at the static (1, C, S, S) input; QDQ model at `path`."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    net.eval()
    q = convert_pt2e(net.g)
    x = torch.zeros(1, channels, imgsz, imgsz)
    with quiet(), torch.no_grad():
        torch.onnx.export(q, (x,), str(path), input_names=["images"], output_names=["heatmap"], dynamo=True,
                          external_data=False, dynamic_shapes=None)
    return path


def build_artifacts(src, qdq: Path, out: Path, backends, calib: dict, qat_info: dict, vals, work: Path,
                    threads: int | None, bench_runs: int, max_drop: float | None = None) -> list[Path]:
    """The QAT QDQ model as onnxruntime / OpenVINO / TensorRT artifacts with sidecars + fidelity.

    max_drop: the fidelity gate (quantize.sanity.check_drop); every artifact is written, then an
    INT8 F1 more than `max_drop` points below FP32 is an error. None: report only.
    """
    import onnx

    from quantize.artifacts import fp32_onnx, stage_int8
    from quantize.onnx_int8 import activations_to_uint8

    u8 = onnx.load(str(qdq))
    activations_to_uint8(u8)
    onnx.save(u8, str(work / "qat_u8.onnx"))
    onnx32 = fp32_onnx(src, work) if vals is not None else None
    done, rejected = [], []
    for n in backends:
        recipe = RECIPES[n]

        def make(path: Path) -> dict:
            return {"quantizer": "QAT: torchao pt2e (litert-torch quantizer), fake-quant fine-tuning", "qat": qat_info,
                    **recipe.from_qdq(qdq, work / "qat_u8.onnx", path)}

        final, rep = stage_int8(recipe, src, out, make, calib, vals, onnx32, work, threads, bench_runs,
                                report={"method": "qat"}, thr_without_report=qat_info.get("best_val_thr"))
        print(f"qat: wrote {final}")
        done.append(final)
        if rep is not None and max_drop is not None:
            from quantize.sanity import check_drop

            rejected += [v for v in [check_drop(rep, str(final), max_drop)] if v]
    if rejected:
        from quantize.sanity import FidelityGateError

        raise FidelityGateError("; ".join(rejected) + "; pass --allow-drop to accept it")
    return done


def run_qat(weights, data, epochs: int, out: str | Path = "runs/qat", backend="onnxruntime,openvino,tensorrt",
            imgsz: int | None = None, split: str = "train", val_data: str | None = None, val_split: str = "val",
            batch: int = 8, lr: float = 1e-4, steps: int = 0, max_val_frames: int = 0, val_frames: int = 50,
            ignored_scope=(), seed: int = 0, threads: int | None = 2, bench_runs: int = 30,
            fidelity: bool = True, quiet: bool = False, max_drop: float | None = None) -> list[Path]:
    """Fine-tune with fake quantization and write the INT8 artifacts; returns their folders (max_drop: the gate)."""
    from quantize.fidelity import default_val, val_set

    from edge.runfolders import check_out_path

    out = check_out_path(out, "--out")  # before the runtimes load and the fine-tuning runs, not after
    names = resolve_backends(backend)
    bad = [n for n in names if n not in QAT_BACKENDS]
    if bad:
        raise SpireEdgeError(f"--backend {bad[0]}: QAT exports {', '.join(QAT_BACKENDS)}; for tflite use "
                             "python -m quantize.ptq --backend tflite")
    for n in names + ["tflite"]:  # the pt2e quantizer comes with the tflite extra
        check_runtime(n)
    if epochs < 1:
        raise SpireEdgeError(f"--epochs {epochs}: QAT needs at least 1 epoch")
    data = [data] if isinstance(data, (str, Path)) else list(data)
    src = load_source(weights, imgsz)
    net, history, info = finetune(src, data, epochs, out, split, val_data, val_split, batch, lr, steps,
                                  max_val_frames, seed, threads, tuple(ignored_scope), quiet)
    calib = {"source": ",".join(str(d) for d in data), "frames": info["split"]["train_frames"], "split": split,
             "method": "qat", "epochs": epochs}
    vals = None
    if fidelity:
        vdata, vsplit = default_val(data[0], val_data, val_split, split)
        vals = val_set(vdata, vsplit, val_frames, src.imgsz, seed)
    qat_info = {"epochs": epochs, "lr": lr, "batch": batch, "steps_per_epoch": steps or None,
                "best_val_f1": info["best_val_f1"], "best_val_thr": info.get("best_val_thr"),
                "fake_quant_modules": info["fake_quant_modules"],
                "history": history}
    with tempfile.TemporaryDirectory(prefix="spire_qat_") as work:
        work = Path(work)
        qdq = export_qdq(net, src.channels, src.imgsz, work / "qat_qdq.onnx")
        return build_artifacts(src, qdq, out, names, calib, qat_info, vals, work, threads, bench_runs, max_drop)


def _parser() -> argparse.ArgumentParser:
    from quantize.cli import add_common

    p = argparse.ArgumentParser(prog="python -m quantize.qat", description=__doc__.split("\n\n")[0])
    add_common(p, weights_required=True, calibration=False)
    p.add_argument("--data", nargs="+", required=True, help="training dataset root(s) (spire.train's --data)")
    p.add_argument("--epochs", type=int, required=True, help="fine-tuning epochs")
    p.add_argument("--out", default="runs/qat", help="output root (default runs/qat)")
    p.add_argument("--backend", default=",".join(QAT_BACKENDS), help="onnxruntime,openvino,tensorrt (comma list)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (cosine decay; default 1e-4)")
    p.add_argument("--steps", type=int, default=0, help="cap batches per epoch (0: a full epoch)")
    p.add_argument("--max-val-frames", type=int, default=0, help="cap validation frames per epoch (0: all)")
    p.add_argument("--quiet", action="store_true")
    return p


def _main(a: argparse.Namespace) -> int:
    run_qat(a.weights, a.data, a.epochs, a.out, a.backend, a.imgsz, a.split, a.val_data, a.val_split, a.batch,
            a.lr, a.steps, a.max_val_frames, a.val_frames, a.ignored_scope or (), a.seed, a.threads, a.bench_runs,
            not a.no_fidelity, a.quiet, max_drop=None if a.allow_drop else a.max_drop)
    return 0


def main(argv=None) -> int:
    from quantize.cli import run_main

    return run_main(_main, _parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
