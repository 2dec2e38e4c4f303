"""flows/ has no import cycle: every import of another flows module counts, including those inside
functions and under `if TYPE_CHECKING:` (a deferred import is a cycle hidden, not removed)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str = "flows") -> dict[str, set[str]]:
    files = {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}

    def resolve(name: str) -> str | None:  # the most specific flows module that `name` names
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in files.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1]) if node.level else ""
                source = ".".join(filter(None, [base, node.module]))
                targets |= {resolve(f"{source}.{alias.name}") for alias in node.names}
        graph[module] = targets - {None, module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search: none exactly when the graph is acyclic."""
    cycles, done, path = [], set(), []

    def visit(node: str) -> None:
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target in path:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)
    return cycles


def test_flows_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert "flows.orchestration.curate" in graph and graph["flows.orchestration.curate"], (
        "no flows modules or imports found"
    )

    cycles = find_cycles(graph)

    assert not cycles, "import cycles in flows/:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_modules_workers_import_load_neither_prefect_nor_plotting():
    """A worker imports a module to unpickle a shard function from it (and a spawned worker re-imports
    its parent's main module, which may import the registry): Prefect or matplotlib would cost it memory."""
    import subprocess
    import sys

    worker_side = [
        "flows.engine.stage",
        "flows.stages.dedup_fuzzy",
        "flows.stages.decontam",
        "flows.parallel.components",
        "flows.engine.store",
        "flows.engine.publish",
        "flows.stages",
    ]
    code = (
        f"import sys, {', '.join(worker_side)}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'matplotlib', 'PIL', 'rich'}))"
    )

    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert loaded.strip() == "[]"


def test_no_function_sent_to_workers_is_defined_in_a_module_that_imports_prefect():
    """Dask pickles a module-level function by reference: a worker running one imports its module. One
    defined beside a Prefect task would make every worker import Prefect (seconds of CPU and ~100 MB per
    worker process). Regression: `write`'s shard writer lived in flows/orchestration/curate.py."""
    offenders = []
    for path in sorted((ROOT / "flows").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        imports_prefect = any(
            (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "prefect" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "prefect")
            for node in tree.body
        )
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if (
                imports_prefect
                and isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"map", "submit"}
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id in defined
            ):
                offenders.append(f"{module_name(path)}.{node.args[0].id} (line {node.lineno})")

    assert offenders == [], f"sent to Dask workers from a module that imports Prefect: {offenders}"
