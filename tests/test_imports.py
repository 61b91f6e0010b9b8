"""No import circle anywhere in src/unnoise, imports written inside functions included.

Every `import` and `from ... import` of every .py file under src/unnoise is read from its AST (module level,
inside functions and classes, under `if`/`try` alike), relative forms resolved against the file's package.
The module graph has one node per module; a package's `__init__.py` is its own node, named as the package.
An import's edge goes to the module it names:

- `import unnoise.a.b` -> `unnoise.a.b`;
- `from unnoise.a import b` / `from .a import b` -> `unnoise.a.b` when `b` is a module file or package,
  else `unnoise.a` (the package's `__init__`, where the name `b` lives);
- `from . import b` -> the sibling module `b`, else the package's `__init__`.

Importing `unnoise.a.b` first runs `unnoise/a/__init__.py`, and that edge is counted too (shown as
`via unnoise.a.b`), except towards the importing module's own enclosing packages: Python has started those
before the module runs, so `unnoise/a/x.py` importing `unnoise.a.y` adds no edge to `unnoise.a` (counting
it would call every package whose `__init__` imports its own submodules a circle). A submodule that really
uses a name from its own package's `__init__` writes `from . import name`, and that explicit edge counts.

The circles are the strongly connected components of more than one module (Tarjan's algorithm, iterative),
plus any module that imports itself. Each component is listed by the shortest circle through each of its
edges, as `a -> b -> c -> a`, with the file:line of every edge.

Run it as a script to print the circles: `python tests/test_imports.py [src/unnoise]`.
"""

import ast
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "unnoise"


def module_names(root):
    """{dotted module name: file} for every .py under `root`, a package named by its folder."""
    root = Path(root)
    modules = {}
    for file in sorted(root.rglob("*.py")):
        parts = (root.name,) + file.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = file
    return modules


def _base(module, is_package, level):
    """The package a relative import of `level` dots in `module` starts from."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts)


def _known(name, modules):
    """`name` itself if it is a module here, else its longest prefix that is (None when none is)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in modules:
            return ".".join(parts)
        parts = parts[:-1]
    return None


def imports(module, file, modules):
    """The edges out of one module: [(target module, line)], for every import statement in the file."""
    tree = ast.parse(Path(file).read_text(encoding="utf-8"), filename=str(file))
    is_package = Path(file).name == "__init__.py"
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target:
                    edges.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _base(module, is_package, node.level)
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                target = sub if sub in modules else _known(source, modules)
                if target:
                    edges.append((target, node.lineno))
    return edges


def _parents(name):
    """The enclosing packages of a dotted name, outermost first: a.b.c -> [a, a.b]."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def import_graph(root=ROOT):
    """{module: {imported module: [(file, line, via), ...]}} over the package at `root`. `via` is None for the
    module an import names, or that module when the edge is to a package `__init__` it runs first."""
    modules = module_names(root)
    graph = {name: {} for name in modules}
    for name, file in modules.items():
        own = set(_parents(name))
        for target, line in imports(name, file, modules):
            found = [(target, None)] + [(p, target) for p in _parents(target) if p in modules and p not in own]
            for module, via in found:
                if module != name or via is None:
                    where = graph[name].setdefault(module, [])
                    if (file, line, via) not in where:
                        where.append((file, line, via))
    return graph


def components(graph):
    """Strongly connected components (Tarjan, iterative), each a list of modules."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def _path(graph, start, goal, allowed):
    """A shortest path start -> ... -> goal inside `allowed` (breadth first): the list of modules."""
    previous, queue = {start: None}, deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = previous[node]
            return path[::-1]
        for child in sorted(graph[node]):
            if child in allowed and child not in previous:
                previous[child] = node
                queue.append(child)
    return None


def component_circles(graph, component):
    """The circles of one component, each a list of modules [a, b, c, a]: the shortest through each edge."""
    members, found, seen = set(component), [], set()
    for a in component:
        for b in sorted(graph[a]):
            if b not in members:
                continue
            cycle = [a] + _path(graph, b, a, members)  # b reaches a: they share the component
            body = cycle[:-1]
            turn = body.index(min(body))
            key = tuple(body[turn:] + body[:turn])
            if key not in seen:
                seen.add(key)
                found.append(list(key) + [key[0]])
    return found


def circular(graph):
    """The components that hold a circle: more than one module, or one that imports itself."""
    return [c for c in components(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def circles(graph):
    """Every circle as a list of modules [a, b, c, a], component by component."""
    return [cycle for component in circular(graph) for cycle in component_circles(graph, component)]


def describe(graph, cycle, root=ROOT):
    """`a -> b -> a` and, below it, each edge with the file:line of its import statements."""
    base = Path(root).parent
    lines = [" -> ".join(cycle)]
    for a, b in zip(cycle, cycle[1:]):
        where = []
        for file, line, via in graph[a][b]:
            file = Path(file)
            shown = file.relative_to(base) if file.is_relative_to(base) else file
            where.append(f"{shown}:{line}" + (f" (via {via})" if via else ""))
        lines.append(f"    {a} -> {b}: {', '.join(where)}")
    return "\n".join(lines)


def report(root=ROOT):
    """The circles in the package at `root`, described component by component, or the empty string."""
    graph = import_graph(root)
    parts = []
    for component in circular(graph):
        found = component_circles(graph, component)
        parts.append(f"{len(component)} modules in a circle ({len(found)} shortest circles): {', '.join(component)}")
        parts += [describe(graph, cycle, root) for cycle in found]
    return f"import circles under {root}:\n" + "\n".join(parts) if parts else ""


# The checker on tiny packages, so that it can fail, then on the real one.


def write_package(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_circle_through_a_function_level_import_is_found(tmp_path):
    pkg = write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "a.py": "from . import b\n",
            "b.py": "import os\n\n\ndef late():\n    from .sub import c\n    return c\n",
            "sub/__init__.py": "",
            "sub/c.py": "from ..a import thing\n",
        },
    )
    graph = import_graph(pkg)
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"]]
    text = report(pkg)
    assert "pkg.a -> pkg.b -> pkg.sub.c -> pkg.a" in text
    assert "pkg.b -> pkg.sub.c: pkg/b.py:5" in text  # the import inside the function, with its line


def test_relative_forms_resolve_to_modules_or_their_package(tmp_path):
    pkg = write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "from .data import load\n",
            "data/__init__.py": "from . import images\n\n\ndef load(): ...\n",
            "data/images.py": "def f():\n    from . import load\n    from .. import helpers\n    import pkg.data\n",
            "helpers.py": "from pkg.data import images as im\n",
        },
    )
    graph = import_graph(pkg)
    assert set(graph["pkg"]) == {"pkg.data"}
    assert set(graph["pkg.data"]) == {"pkg.data.images"}
    assert set(graph["pkg.data.images"]) == {"pkg.data", "pkg.helpers"}  # `load` lives in data's __init__
    assert set(graph["pkg.helpers"]) == {"pkg.data.images", "pkg.data"}  # pkg.data's __init__ runs first
    assert graph["pkg.helpers"]["pkg.data"] == [(pkg / "helpers.py", 1, "pkg.data.images")]
    assert sorted(circles(graph)) == [
        ["pkg.data", "pkg.data.images", "pkg.data"],
        ["pkg.data", "pkg.data.images", "pkg.helpers", "pkg.data"],
        ["pkg.data.images", "pkg.helpers", "pkg.data.images"],
    ]


def test_another_packages_init_counts_but_not_ones_own(tmp_path):
    """`a.x` importing `b.y` runs b's __init__ (an edge); `a.x` importing `a.z` runs no new __init__."""
    files = {
        "__init__.py": "",
        "a/__init__.py": "from . import x, z\n",
        "a/x.py": "from pkg.a import z\n",
        "a/z.py": "",
        "b/__init__.py": "def helper():\n    from ..a import x\n",
        "b/y.py": "",
    }
    assert circles(import_graph(write_package(tmp_path / "ok", files))) == []
    files["a/x.py"] += "from ..b import y\n"  # runs b's __init__, which imports a.x (in a function): a circle
    graph = import_graph(write_package(tmp_path / "pkg", files))
    assert sorted(circles(graph)) == [["pkg.a", "pkg.a.x", "pkg.b", "pkg.a"], ["pkg.a.x", "pkg.b", "pkg.a.x"]]
    assert "pkg.a.x -> pkg.b: pkg/a/x.py:2 (via pkg.b.y)" in report(tmp_path / "pkg")


def test_a_package_without_circles_passes(tmp_path):
    pkg = write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "from .a import thing\nfrom . import sub\n",
            "a.py": "import os\nfrom .sub.c import other\n\n\ndef thing():\n    from . import b\n    return b\n",
            "b.py": "from .sub import c\n",
            "sub/__init__.py": "",
            "sub/c.py": "import json\n\n\ndef other(): ...\n",
        },
    )
    assert circles(import_graph(pkg)) == []
    assert report(pkg) == ""


def test_a_module_importing_itself_is_a_circle(tmp_path):
    pkg = write_package(tmp_path / "pkg", {"__init__.py": "", "a.py": "def f():\n    from pkg import a\n"})
    assert circles(import_graph(pkg)) == [["pkg.a", "pkg.a"]]


def test_no_import_circles_in_unnoise():
    text = report(ROOT)
    assert not text, text


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    text = report(root)
    print(text or f"no import circles under {root}")
    sys.exit(1 if text else 0)
