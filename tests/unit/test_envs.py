"""Per-rule conda envs: every rule names an env that exists, each env lists what its code imports.

The import analysis is static (``ast``) and conservative: a rule script imports
``sxtflow.stages.run_<stage>``; the imports inside that function (and the ``stages`` helpers it
calls) name the sxtflow modules it uses; every import anywhere in those modules counts (lazy
imports included, since any code path may reach them), transitively. Third-party top-level names
are mapped to conda-forge package names and must be listed in the rule's env.

Pins: each env pins the exact version pip installed for the tests (``importlib.metadata``), so
the conda and the pip runs execute the same library code. Packages pip does not install here
(``tomopy``, conda-only) cannot be compared and are listed in ``CONDA_ONLY``.
"""

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "workflow" / "rules"
SCRIPTS = ROOT / "workflow" / "scripts"
SRC = ROOT / "src" / "sxtflow"
ENVS = ROOT / "envs"

#: import name -> conda-forge package name (only where they differ, or to be explicit)
CONDA_NAME = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "matplotlib": "matplotlib-base",
    "mpl_toolkits": "matplotlib-base",
    "mrcfile": "mrcfile",
    "h5py": "h5py",
    "tifffile": "tifffile",
    "zarr": "zarr",
    "trimesh": "trimesh",
    "skops": "skops",
    "xraydb": "xraydb",
    "tomopy": "tomopy",
    "ome_zarr": "ome-zarr",
    "dask": "dask-core",
    "threadpoolctl": "threadpoolctl",
    "edt": "edt",
    "lazy_loader": "lazy_loader",
}
#: conda-forge package name -> pip distribution name (for importlib.metadata)
PIP_NAME = {"matplotlib-base": "matplotlib", "pyyaml": "PyYAML", "dask-core": "dask"}
#: conda-only packages: not installed by pip in the test run, so their pins cannot be compared
CONDA_ONLY = {"tomopy"}
#: the per-rule envs must contain these too (the interpreter)
ALWAYS = {"python"}


def parse_rules():
    """``{rule: {"conda": path or None, "script": path or None, "shell": bool}}`` of the .smk files."""
    rules = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"^(?=rule \w+:)", text, flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            conda = re.search(r"^    conda:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
            script = re.search(r"^    script:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
            rules[name] = {
                "conda": (smk.parent / conda.group(1)).resolve() if conda else None,
                "script": (smk.parent / script.group(1)).resolve() if script else None,
                "shell": bool(re.search(r"^    (shell|run|wrapper):", block, flags=re.M)),
            }
    return rules


def _optional(try_node):
    """True for ``try: import x`` / ``except ImportError:`` (or ``Exception``): optional."""
    caught = set()
    for handler in try_node.handlers:
        for t in handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]:
            caught.add(getattr(t, "id", None))
    return bool(caught & {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def _walk(node):
    """``ast.walk`` that skips the bodies of optional-import ``try`` blocks."""
    todo = [node]
    while todo:
        sub = todo.pop()
        yield sub
        if isinstance(sub, ast.Try) and _optional(sub):
            todo += sub.handlers + sub.orelse + sub.finalbody
        else:
            todo += list(ast.iter_child_nodes(sub))


def _imports(nodes, package):
    """(third-party/stdlib top-level names, sxtflow modules) imported in ``nodes``.

    ``package`` is the package the code lives in (relative imports resolve against it).
    Imports guarded by ``except ImportError`` are optional and not counted.
    """
    names, modules = set(), set()
    for node in nodes:
        for sub in _walk(node):
            if isinstance(sub, ast.Import):
                for alias in sub.names:
                    _add(alias.name, names, modules)
            elif isinstance(sub, ast.ImportFrom):
                members = [a.name for a in sub.names]
                if sub.level:  # relative: from . import x / from .x import y / from ..x import y
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - (sub.level - 1)])
                    _add(f"{base}.{sub.module}" if sub.module else base, names, modules, members)
                else:
                    _add(sub.module, names, modules, members)
    return names, modules


def _add(module, names, modules, members=()):
    top = module.split(".")[0]
    if top == "sxtflow":
        modules.add(module)
        # ``from sxtflow.io import _volumes`` imports a module; ``from . import x`` too
        for m in members:
            if _module_file(f"{module}.{m}"):
                modules.add(f"{module}.{m}")
                modules.update(_lazy_submodules(f"{module}.{m}").values())  # the whole package
        lazy = _lazy_submodules(module)
        if lazy and (not members or "*" in members):
            modules.update(lazy.values())  # ``import sxtflow.plot``: any submodule may load
        else:
            modules.update(lazy[m] for m in members if m in lazy)
    elif top != "_paths":
        names.add(top)


def _lazy_submodules(module):
    """``{name: submodule}`` of a package whose ``__init__`` loads its names lazily
    (``lazy_loader.attach(__name__, submod_attrs={...})``), else ``{}``.

    Importing such a package imports none of its submodules; ``from pkg import name`` imports
    the one holding ``name``, so only that submodule's imports count.
    """
    path = _module_file(module)
    if path is None or path.name != "__init__.py":
        return {}
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "attach":
            for kw in node.keywords:
                if kw.arg == "submod_attrs":
                    table = ast.literal_eval(kw.value)
                    out.update({n: f"{module}.{sub}" for sub, ns in table.items() for n in ns})
    return out


def _module_file(module):
    """The file of an sxtflow module or package (its ``__init__.py``), None if there is none."""
    path = SRC.joinpath(*module.split(".")[1:])
    for cand in (path.with_suffix(".py"), path / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _package(module):
    """The package relative imports in ``module`` resolve against."""
    return module if _module_file(module).name == "__init__.py" else module.rpartition(".")[0]


def _stage_imports(functions):
    """Imports of the named ``sxtflow.stages`` functions and the stages helpers they call."""
    trees = [ast.parse(f.read_text()) for f in sorted((SRC / "stages").glob("*.py"))]
    assert len(trees) > 3, "sxtflow.stages is a package of one module per rule family"
    defs = {n.name: n for tree in trees for n in tree.body if isinstance(n, ast.FunctionDef)}
    todo, seen = list(functions), set()
    while todo:
        fn = todo.pop()
        if fn in seen or fn not in defs:
            continue
        seen.add(fn)
        for sub in ast.walk(defs[fn]):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                todo.append(sub.func.id)
    # every stage module is imported with the package (its __init__ imports them all)
    top_level = [
        n for tree in trees for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
    ]
    return _imports(top_level + [defs[f] for f in seen], "sxtflow.stages")


def third_party_imports(script):
    """Top-level third-party import names a rule script needs, through sxtflow, transitively."""
    tree = ast.parse(Path(script).read_text())
    names, modules = _imports([tree], "sxtflow")
    stage_fns = {
        a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "sxtflow.stages"
        for a in n.names
    }
    if stage_fns:
        modules.discard("sxtflow.stages")  # its modules: read function by function below
        more_names, more_modules = _stage_imports(stage_fns)
        names |= more_names
        modules |= more_modules
    # the stage modules were read function by function (their other functions' imports are
    # other rules' business), so they are not counted whole below
    stage_modules = {f"sxtflow.stages.{f.stem}" for f in (SRC / "stages").glob("*.py")}
    seen = {"sxtflow.stages", *stage_modules} if stage_fns else set()
    todo = list(modules - seen)
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        path = _module_file(mod)
        if path is None:
            continue
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        parents = {mod.rsplit(".", k)[0] for k in range(1, mod.count(".") + 1)}
        todo += list(parents - seen)
        # a module reached indirectly is counted whole (for stages: all of it)
        more_names, more_modules = _imports([ast.parse(path.read_text())], _package(mod))
        names |= more_names
        todo += list(more_modules - seen)
    return {n for n in names if n not in sys.stdlib_module_names}


def read_env(path):
    """``{package: version}`` of a conda env file (version '' when unpinned)."""
    spec = yaml.safe_load(Path(path).read_text())
    assert "conda-forge" in spec["channels"], f"{path}: channel conda-forge missing"
    out = {}
    for dep in spec["dependencies"]:
        assert isinstance(dep, str), f"{path}: pip sections are not allowed ({dep})"
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(?:==?\s*([^\s=<>!,*]+))?", dep)
        assert m, f"{path}: cannot read dependency {dep!r}"
        out[m.group(1).lower()] = m.group(2) or ""
    return out


RULE_TABLE = parse_rules()
JOB_RULES = sorted(r for r, v in RULE_TABLE.items() if v["script"] or v["shell"])


def test_rule_table_is_read():
    # the parser must see the pipeline's rules, or every test below would pass vacuously
    assert {"simulate", "reconstruct", "features", "train", "predict", "mesh", "compare"} <= set(
        JOB_RULES
    )


@pytest.mark.parametrize("rule", JOB_RULES)
def test_rule_names_an_existing_env(rule):
    env = RULE_TABLE[rule]["conda"]
    assert env is not None, f"rule {rule}: no conda: directive"
    assert env.is_file(), f"rule {rule}: conda env {env} does not exist"
    assert env.parent == ENVS.resolve(), f"rule {rule}: env {env} is not under envs/"


@pytest.mark.parametrize("rule", [r for r in JOB_RULES if RULE_TABLE[r]["script"]])
def test_env_lists_what_the_rule_imports(rule):
    env = read_env(RULE_TABLE[rule]["conda"])
    imported = third_party_imports(RULE_TABLE[rule]["script"])
    unknown = imported - set(CONDA_NAME)
    assert not unknown, f"rule {rule}: add the conda names of {sorted(unknown)} to CONDA_NAME"
    needed = {CONDA_NAME[n] for n in imported} | ALWAYS
    missing = needed - set(env)
    assert not missing, f"rule {rule}: {RULE_TABLE[rule]['conda'].name} lacks {sorted(missing)}"


def test_import_analysis_follows_lazy_imports():
    # known answers: the mesh stage reaches trimesh, skimage (lazy) and matplotlib (lazy);
    # tomopy (reconstruct backend) and scikit_posthocs (compare) sit behind ``except
    # ImportError``: optional, not required; simulate reaches xraydb but not sklearn
    assert {"trimesh", "skimage", "matplotlib", "numpy"} <= third_party_imports(SCRIPTS / "mesh.py")
    assert "tomopy" not in third_party_imports(SCRIPTS / "reconstruct.py")
    assert "scipy" in third_party_imports(SCRIPTS / "reconstruct.py")
    assert "xraydb" in third_party_imports(SCRIPTS / "simulate.py")
    # through the sxtflow.io and sxtflow.recon packages (their private modules, lazy imports)
    assert {"h5py", "mrcfile", "tifffile", "zarr"} <= third_party_imports(
        SCRIPTS / "reconstruct.py"
    )
    assert "sklearn" not in third_party_imports(SCRIPTS / "simulate.py")
    # lazily loaded packages (sxtflow.plot): the reconstruct rule draws a preview only, so it
    # reaches matplotlib but not the mesh renders' trimesh
    assert "matplotlib" in third_party_imports(SCRIPTS / "reconstruct.py")
    assert "trimesh" not in third_party_imports(SCRIPTS / "reconstruct.py")


@pytest.mark.parametrize("env", sorted(p.name for p in ENVS.glob("*.yaml")))
def test_env_pins_match_the_tested_versions(env):
    deps = read_env(ENVS / env)
    unpinned = sorted(k for k, v in deps.items() if not v)
    assert not unpinned, f"{env}: unpinned {unpinned}"
    python = deps["python"]
    low = re.search(r">=\s*([\d.]+)", md.metadata("sxtflow")["Requires-Python"] or ">=3")
    assert tuple(map(int, python.split("."))) >= tuple(map(int, low.group(1).split("."))), env
    wrong = {}
    for pkg, pin in deps.items():
        if pkg == "python" or pkg in CONDA_ONLY:
            continue
        try:
            have = md.version(PIP_NAME.get(pkg, pkg))
        except md.PackageNotFoundError:
            wrong[pkg] = (pin, "not installed by pip")
            continue
        if have != pin:
            wrong[pkg] = (pin, have)
    assert not wrong, f"{env}: pin != pip version in this run {wrong}"


@pytest.mark.parametrize("env", sorted(p.name for p in ENVS.glob("*.yaml")))
def test_env_python_is_the_snakemake_python(env):
    # Snakemake's script preamble appends the host interpreter's sys.path (its own package and
    # dependencies) to the env's python, so compiled modules there must match its minor version
    pin = read_env(ENVS / env)["python"]
    assert pin.split(".")[:2] == [str(v) for v in sys.version_info[:2]], (
        f"{env}: python={pin}, tests run {sys.version_info.major}.{sys.version_info.minor}"
    )


def test_unused_envs_are_flagged():
    used = {v["conda"].name for v in RULE_TABLE.values() if v["conda"]}
    assert used == {p.name for p in ENVS.glob("*.yaml")}


def test_reconstruction_env_carries_tomopy():
    # optional in the code (pip users may lack it), but the conda env offers the backend
    assert "tomopy" in read_env(ENVS / "reconstruct.yaml")
