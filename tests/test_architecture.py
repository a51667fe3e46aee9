"""The shape of the library: rooms layered as docs/architecture.md draws them, no cycles, no
module so large that its concepts cannot be seen."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

PIPELINE = REPO / "pipeline"
LARGEST_LINES = 600


def test_import_contracts_hold() -> None:
    """Layers, no cycles, no Airflow and no demo code in production rooms (import-linter)."""
    lint = REPO / ".venv" / "bin" / "lint-imports"
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "BROKEN" not in result.stdout


def test_no_module_cycle_anywhere_in_the_library() -> None:
    """Module by module (not only between rooms): an import cycle makes start-up order fragile."""
    import grimp

    graph = grimp.build_graph("pipeline")
    modules = sorted(graph.modules)
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("pipeline")}
             for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in modules:
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in PIPELINE.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > LARGEST_LINES}


def test_the_architecture_names_who_supplies_font_metrics() -> None:
    """Layout measures text with the embedded Noto fonts' own metrics (fonttools reads them);
    no module asks reportlab for font metrics, so the architecture page must not say it does."""
    users = [path.relative_to(REPO) for path in PIPELINE.rglob("*.py")
             if "pdfmetrics" in path.read_text(encoding="utf-8")]
    assert users == []
    assert "from fontTools" in (PIPELINE / "render" / "pdf" / "fontfile.py").read_text(encoding="utf-8")
    text = " ".join((REPO / "docs" / "architecture.md").read_text(encoding="utf-8").split())
    assert "reportlab supplies font metrics" not in text
    assert "metrics of the embedded Noto fonts" in text
