"""The device side must run without torch: import every edge module with torch blocked."""
import subprocess
import sys
import textwrap


def test_every_edge_module_imports_without_torch():
    code = textwrap.dedent(
        """
        import builtins, importlib, pkgutil, sys
        real = builtins.__import__
        def guard(name, *a, **k):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked")
            return real(name, *a, **k)
        builtins.__import__ = guard
        import edge
        names = [m.name for m in pkgutil.walk_packages(edge.__path__, "edge.")]
        for n in names:
            importlib.import_module(n)
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch got imported"
        print(len(names))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 1


def test_edge_imports_no_other_project_package():
    """edge sits at the bottom of the dependency graph: it never imports spire/export/quantize."""
    _imports_none_of("edge", ("spire", "export", "quantize", "benchmarks"))


def _imports_none_of(pkg: str, others: tuple[str, ...]) -> None:
    """Import every module of `pkg` in a fresh interpreter; none of `others` may get loaded."""
    code = (
        f"import importlib, pkgutil, sys, {pkg}\n"
        f"for m in pkgutil.walk_packages({pkg}.__path__, '{pkg}.'): importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {others!r}]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


# ------------------------------------------------------------------ the one import direction
REPO = __import__("pathlib").Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "spire", "export", "quantize", "benchmarks")
# what each package may import (docs/ARCHITECTURE.md): edge <- spire <- export <- quantize; benchmarks on top
ALLOWED = {"edge": set(), "spire": {"edge"}, "export": {"edge", "spire"}, "quantize": {"edge", "spire", "export"},
           "benchmarks": {"edge", "spire", "export", "quantize"}}


def _imports(path):
    """Top-level package names imported anywhere in a file (module level or inside functions)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & set(PACKAGES)


def test_import_direction_is_one_way():
    """export never imports quantize (int8 is handed off by command); edge imports none of the others.

    Checked on the source, so a function-level import counts as much as one at the top. (edge's
    backend table names `spire.torch_backend` as data, imported only when a torch checkpoint runs.)
    """
    bad = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            for dep in _imports(path) - {pkg} - ALLOWED[pkg]:
                bad.append(f"{path.relative_to(REPO)} imports {dep}")
    assert not bad, bad


def test_export_loads_without_quantize():
    _imports_none_of("export", ("quantize", "benchmarks"))
