"""The kit's shape: short functions, and imports that run one way (no module of kit/ imports itself back).

Both read the source with `ast`, so they run in milliseconds and import nothing.
"""
import ast
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent / "kit"
MAX_LINES = 70  # a function or method, decorators and docstring included, fits on one screen

# Functions that may be longer: data tables written as code. None today (kit/generate.py keeps its vocabulary
# and sentence templates as module-level lists and dicts, not functions). Entry: "file.py:qualified.name".
LONG_ALLOWED: set[str] = set()


def modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(KIT.glob("*.py"))}


def functions(tree: ast.Module, prefix: str = ""):
    """(qualified name, node) of every function and method, nested ones included (outer.inner, Class.method)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from functions(node, name + ".")
        else:
            yield from functions(node, prefix)


def long_functions() -> dict[str, int]:
    """{"file.py:name": lines} of every function longer than MAX_LINES."""
    return {f"{mod}.py:{name}": node.end_lineno - node.lineno + 1
            for mod, tree in modules().items() for name, node in functions(tree)
            if node.end_lineno - node.lineno + 1 > MAX_LINES}


def test_no_function_is_longer_than_a_screen():
    long = {k: n for k, n in long_functions().items() if k not in LONG_ALLOWED}
    assert not long, (f"functions over {MAX_LINES} lines (split them, or list a data table in LONG_ALLOWED): "
                      + ", ".join(f"kit/{k}:{n}" for k, n in sorted(long.items())))


def test_the_allow_list_names_only_long_functions():
    stale = LONG_ALLOWED - set(long_functions())
    assert not stale, f"LONG_ALLOWED names functions that are gone or short now: {sorted(stale)}"


# ----------------------------------------------------------------------------- one-way imports

def kit_imports(mod: str, tree: ast.Module, known: set[str]) -> dict[str, str]:
    """{imported kit module: where} for every import of a kit module, at module level or inside a function."""
    found = {}
    for scope, node in _imports(tree, "module level"):
        if isinstance(node, ast.ImportFrom):
            if node.level > 1:
                continue
            base = node.module if node.level == 0 else ("kit." + node.module if node.module else "kit")
            if base == "kit":  # from kit import data / from . import data
                names = [a.name for a in node.names]
            elif base.startswith("kit."):
                names = [base.split(".")[1]]
            else:
                continue
        else:  # import kit.data
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("kit.")]
        for name in names:
            if name in known and name != mod:
                found.setdefault(name, f"kit/{mod}.py:{node.lineno} ({scope})")
    return found


def _imports(tree, scope):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield scope, node
        inner = f"in {node.name}" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else scope
        yield from _imports(node, inner)


def import_graph() -> dict[str, dict[str, str]]:
    trees = modules()
    return {mod: kit_imports(mod, tree, set(trees)) for mod, tree in trees.items()}


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Every simple cycle, each once: it starts at its smallest module and visits only larger ones."""
    found = []

    def walk(start, path):
        for nxt in sorted(graph[path[-1]]):
            if nxt == start:
                found.append(path + [start])
            elif nxt > start and nxt not in path:
                walk(start, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return found


def test_cycle_finder_names_every_cycle():
    graph = {"a": {"b": ""}, "b": {"a": "", "c": ""}, "c": {"a": ""}, "d": {"a": ""}}
    assert cycles(graph) == [["a", "b", "a"], ["a", "b", "c", "a"]]


def test_kit_imports_run_one_way():
    graph = import_graph()
    found = cycles(graph)
    lines = [" -> ".join(f"kit.{m}" for m in cycle) + ": "
             + "; ".join(f"{graph[a][b]} imports kit.{b}" for a, b in zip(cycle, cycle[1:])) for cycle in found]
    assert not found, "import cycles (move the shared piece into the module both can import):\n" + "\n".join(lines)
