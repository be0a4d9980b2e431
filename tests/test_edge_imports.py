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
    code = (
        "import importlib, pkgutil, sys, edge\n"
        "for m in pkgutil.walk_packages(edge.__path__, 'edge.'): importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('spire', 'export', 'quantize', 'benchmarks')]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
