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

from edge.cli import run_cli
from edge.codecs import build_codec
from edge.errors import SpireEdgeError
from edge.inference.preprocess import PreprocessConfig
from edge.outputs.runfolders import check_out_path
from export.common import load_source, quiet
from quantize.artifacts import fp32_onnx, stage_int8
from quantize.fidelity import default_val, val_set
from quantize.job import Int8Job, Int8Run, QatOptions, add_job_options
from quantize.recipes import RECIPES, check_runtime, resolve_backends
from quantize.sanity import FidelityGateError, check_drop

QAT_BACKENDS = tuple(n for n, r in RECIPES.items() if r.qat)  # onnxruntime, openvino, tensorrt
QAT_JOB = Int8Job(backend=",".join(QAT_BACKENDS), out="runs/qat")  # `python -m quantize.qat`'s defaults


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


def _carried_over(trained: dict) -> dict:
    """The FP32 run's background share, zoom and frame stride, as TrainConfig fields: video roots are
    read as that run read them (a --finetune run: every frame of a short clip; the default stride of
    10 left "2 training frames" of a 30-frame clip)."""
    extra = {}
    if "bg_ratio" in trained:
        extra["bg_ratio"] = float(trained["bg_ratio"])
    if (trained.get("augment") or {}).get("zoom"):
        extra["zoom"] = tuple(trained["augment"]["zoom"])
    stride = int((trained.get("split") or {}).get("frame_stride") or 1)
    extra["frame_stride"] = extra["val_frame_stride"] = stride
    return extra


def finetune(src, job: Int8Job, opts: QatOptions):
    """QAT fine-tuning from the FP32 model of `src` on `job.roots`; returns (best fake-quant net, history, info)."""
    import torch
    from tqdm import tqdm

    from spire import engine
    from spire.augment import AugmentConfig
    from spire.data import Reporter, TrainDataset, collate_skip
    from spire.plan import Mixture, PlanSampler
    from spire.validation import Validation, validate
    from spire.train_config import TrainConfig
    from spire.train_data import build_data

    epochs, batch, lr, steps = opts.epochs, opts.batch, opts.lr, opts.steps
    if job.threads:
        torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)

    # The FP32 run's crops, sampling and zoom carry over (its background share sets the false-alarm
    # rate); the model is exported at its deployed size (src.imgsz, edge.model.contract), trained on crops.
    trained = src.training or {}
    crop = int(trained.get("imgsz") or src.imgsz)
    pre = dataclasses.replace(PreprocessConfig.from_dict(src.preprocess), imgsz=crop)
    codec = build_codec({**src.codec, "input_size": crop})
    extra = _carried_over(trained)
    out = Path(job.out)
    cfg = TrainConfig(data=job.roots, train_split=job.split, val_data=job.val_data, val_split=job.val_split,
                      imgsz=crop, epochs=epochs, batch=batch, lr=lr, max_val_frames=opts.max_val_frames,
                      seed=job.seed, out=str(out), quiet=opts.quiet, **extra)
    reporter = Reporter()
    store, val_sets, split_info, _ = build_data(cfg, False, pre.channels, reporter, opts.quiet)
    aug = AugmentConfig(zoom=cfg.zoom, dihedral=True, crop=None if pre.scale_up else crop)
    ds = TrainDataset(store, pre, codec, aug, job.seed)
    sampler = PlanSampler(store, job.seed, Mixture(cfg.bg_ratio))
    net = _fake_quant_model(src.model, pre.channels, crop, tuple(job.ignored_scope or ()))
    info = engine.DistInfo()
    val_mode = "resize" if pre.scale_up else "native"  # spire.train's validation of such a model
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    per_epoch = -(-sampler.epoch_len() // batch)
    n_steps = min(per_epoch, steps) if steps else per_epoch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * n_steps), eta_min=lr * 0.01)
    history, best, best_state, best_thr = [], -math.inf, None, None
    out.mkdir(parents=True, exist_ok=True)
    print(f"qat: {src.arch} on {crop} px crops, exported at {src.imgsz} px, {len(store)} training frames, "
          f"{split_info['val_frames']} validation "
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
                  disable=opts.quiet) as bar:
            r = engine.train_one_epoch(net, loader, engine.StepRule(opt), device=info.device, should_stop=should_stop,
                                       progress=bar)
        val = validate(net, Validation(val_sets, pre, codec, val_mode, reporter, opts.max_val_frames, None, opts.quiet),
                       info)
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


def build_artifacts(run: Int8Run, qdq: Path, backends, qat_info: dict) -> list[Path]:
    """The QAT QDQ model as onnxruntime / OpenVINO / TensorRT artifacts with sidecars + fidelity.

    The fidelity gate (quantize.sanity.check_drop, `run.job.max_drop`): every artifact is written,
    then an INT8 F1 more than `max_drop` points below FP32 is an error. None: report only.
    """
    import onnx

    from quantize.onnx_int8 import activations_to_uint8

    u8 = onnx.load(str(qdq))
    activations_to_uint8(u8)
    onnx.save(u8, str(run.work / "qat_u8.onnx"))
    if run.vals is not None:
        run = dataclasses.replace(run, onnx32=fp32_onnx(run.src, run.work))
    done, rejected = [], []
    for n in backends:
        recipe = RECIPES[n]

        def make(path: Path) -> dict:
            return {"quantizer": "QAT: torchao pt2e (litert-torch quantizer), fake-quant fine-tuning", "qat": qat_info,
                    **recipe.from_qdq(qdq, run.work / "qat_u8.onnx", path)}

        final, rep = stage_int8(run, recipe, make, report={"method": "qat"},
                                thr_without_report=qat_info.get("best_val_thr"))
        print(f"qat: wrote {final}")
        done.append(final)
        if rep is not None and run.job.max_drop is not None:
            rejected += [v for v in [check_drop(rep, str(final), run.job.max_drop)] if v]
    if rejected:
        raise FidelityGateError("; ".join(rejected) + "; pass --allow-drop to accept it")
    return done


def run_qat(job: Int8Job, opts: QatOptions) -> list[Path]:
    """Fine-tune `job.weights` with fake quantization on `job.roots` and write the INT8 artifacts of
    `job.backend`; returns their folders (`job.max_drop`: the fidelity gate)."""
    check_out_path(job.out, "--out")  # before the runtimes load and the fine-tuning runs, not after
    names = resolve_backends(job.backend)
    bad = [n for n in names if n not in QAT_BACKENDS]
    if bad:
        raise SpireEdgeError(f"--backend {bad[0]}: QAT exports {', '.join(QAT_BACKENDS)}; for tflite use "
                             "python -m quantize.ptq --backend tflite")
    for n in names + ["tflite"]:  # the pt2e quantizer comes with the tflite extra
        check_runtime(n)
    if opts.epochs < 1:
        raise SpireEdgeError(f"--epochs {opts.epochs}: QAT needs at least 1 epoch")
    if not job.roots:
        raise SpireEdgeError("QAT fine-tunes on labelled frames: pass --data ROOT")
    src = load_source(job.weights, job.imgsz)
    net, history, info = finetune(src, job, opts)
    calib = {"source": ",".join(job.roots), "frames": info["split"]["train_frames"], "split": job.split,
             "method": "qat", "epochs": opts.epochs}
    vals = None
    if job.fidelity:
        vdata, vsplit = default_val(job.roots[0], job.val_data, job.val_split, job.split)
        vals = val_set(vdata, vsplit, job.val_frames, src.imgsz, job.seed)
    qat_info = {"epochs": opts.epochs, "lr": opts.lr, "batch": opts.batch, "steps_per_epoch": opts.steps or None,
                "best_val_f1": info["best_val_f1"], "best_val_thr": info.get("best_val_thr"),
                "fake_quant_modules": info["fake_quant_modules"],
                "history": history}
    with tempfile.TemporaryDirectory(prefix="spire_qat_") as work:
        work = Path(work)
        qdq = export_qdq(net, src.channels, src.imgsz, work / "qat_qdq.onnx")
        return build_artifacts(Int8Run(job, src, calib, vals, work=work), qdq, names, qat_info)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m quantize.qat", description=__doc__.split("\n\n")[0])
    add_job_options(p, QAT_JOB, weights_required=True, calibration=False)
    p.add_argument("--data", nargs="+", required=True, help="training dataset root(s) (spire.train's --data)")
    p.add_argument("--backend", default=QAT_JOB.backend, help="onnxruntime,openvino,tensorrt (comma list)")
    QatOptions.add_options(p)
    return p


def _main(a: argparse.Namespace) -> int:
    run_qat(Int8Job.from_args(a, QAT_JOB), QatOptions.from_args(a))
    return 0


def main(argv=None) -> int:
    return run_cli(_main, argv, _parser())


if __name__ == "__main__":
    raise SystemExit(main())
