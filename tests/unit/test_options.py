"""One source for every default: sxtflow.options, read by the schema check, the stages, the
CLI and config/README.md. Each test fails when one of them disagrees with the options."""

import inspect
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from sxtflow import stages
from sxtflow.cli import build_parser
from sxtflow.options import DEFAULTS, PER_CLASS, with_defaults

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
#: mappings whose keys are the user's (conditions, families), not options
FREE = {("simulate", "conditions"), ("features", "family_sigmas")}

#: stage function -> the config section its keyword defaults come from
STAGES = {
    "run_simulate": ("simulate",),
    "run_annotate": ("simulate", "annotation"),
    "run_reconstruct": ("reconstruct",),
    "run_features": ("features",),
    "run_train": ("train",),
    "run_predict": ("predict",),
    "run_evaluate": ("evaluate",),
    "run_mesh": ("mesh",),
    "run_measure": ("measure",),
    "run_compare": ("compare",),
}
#: CLI subcommand -> (section, positional arguments)
CLI = {
    "simulate": (("simulate",), ["p.h5", "l.mrc", "lac.mrc"]),
    "annotate": (("simulate", "annotation"), ["t.mrc", "a.mrc"]),
    "reconstruct": (("reconstruct",), ["raw.h5", "t.mrc"]),
    "features": (("features",), ["t.mrc", "f.zarr"]),
    "train": (("train",), ["--features", "f", "--annotations", "a", "--model", "m.skops"]),
    "predict": (("predict",), ["t.mrc", "m.skops", "p.mrc"]),
    "evaluate": (("evaluate",), ["p.mrc", "t.mrc", "e.tsv"]),
    "mesh": (("mesh",), ["l.mrc", "t.mrc", "out"]),
    "measure": (("measure",), ["l.mrc", "t.mrc", "o.tsv", "c.tsv"]),
    "compare": (("compare",), ["sheet.tsv", "out"]),
}


def section(path):
    out = DEFAULTS
    for key in path:
        out = out[key]
    return out


def leaves(node, path=()):
    """Dotted option paths of DEFAULTS (per-class and free mappings are one leaf each)."""
    if isinstance(node, dict) and node and path not in PER_CLASS and path not in FREE:
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    else:
        yield path


def schema_leaves(node, path=()):
    props = node.get("properties")
    if props and path not in PER_CLASS and path not in FREE:
        for key, sub in props.items():
            yield from schema_leaves(sub, (*path, key))
    elif path:
        yield path


def norm(value):
    return [norm(v) for v in value] if isinstance(value, list | tuple) else value


def test_schema_and_options_name_the_same_keys_and_defaults_validate():
    options = set(leaves(DEFAULTS))
    schema = set(schema_leaves(SCHEMA)) - {("samples",)}
    per_class_schema = {("refine",), ("measure", "separate")}
    assert options == schema | per_class_schema, (options ^ schema) - per_class_schema
    jsonschema.validate(with_defaults({"samples": "s.tsv"}), SCHEMA)

    def keys(node):
        if isinstance(node, dict):
            yield from node
            for v in node.values():
                yield from keys(v)
        elif isinstance(node, list):
            for v in node:
                yield from keys(v)

    assert "default" not in set(keys(SCHEMA))  # no second source of defaults


@pytest.mark.parametrize("func", sorted(STAGES))
def test_stage_defaults_are_the_options(func):
    options = section(STAGES[func])
    params = inspect.signature(getattr(stages, func)).parameters
    checked = [k for k in options if k in params and params[k].default is not inspect._empty]
    assert checked, f"{func} takes none of the {STAGES[func]} options"
    for key in checked:
        if (*STAGES[func], key) in PER_CLASS:
            continue  # None = the default entries of the classes given
        assert norm(params[key].default) == norm(options[key]), f"{func}({key}=...)"
    if func == "run_measure":
        assert params["smooth_iterations"].default == DEFAULTS["mesh"]["smooth_iterations"]


@pytest.mark.parametrize("command", sorted(CLI))
def test_cli_defaults_are_the_options(command):
    path, positional = CLI[command]
    args = vars(build_parser().parse_args([command, *positional]))
    options = section(path)
    checked = [k for k in options if k in args]
    assert checked, f"sxtflow {command} takes none of the {path} options"
    for key in checked:
        assert norm(args[key]) == norm(options[key]), f"sxtflow {command} --{key}"


def readme_defaults():
    """``{dotted key: default}`` from the tables of config/README.md (`key` | `default` | …)."""
    text = (ROOT / "config/README.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9_.]+)` \| `([^`]*)` \|", text, flags=re.M)
    return {key: yaml.safe_load(value) for key, value in rows}


def test_config_readme_lists_every_option_with_its_default():
    documented = readme_defaults()
    for path in leaves(DEFAULTS):
        key = ".".join(path)
        if path in PER_CLASS:
            for cls, entry in section(path).items():
                assert documented.get(f"{key}.{cls}") == entry, f"{key}.{cls}"
            continue
        assert key in documented, f"config/README.md lacks {key}"
        assert norm(documented[key]) == norm(section(path)), key


def test_demo_config_sets_only_what_the_demo_chooses():
    demo = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for path in leaves(demo):
        if path[:2] == ("simulate", "conditions") or path in {("samples",), ("classes",)}:
            continue
        assert path != ("compare", "measures"), "derived from the classes"
        # the demo chooses its data (simulate, seed), its comparison and, for time, its trees,
        # its feature families and one thread per job (12 cells on 2 cores)
        chosen = path[0] in ("seed", "simulate", "compare", "threads") or path in {
            ("train", "n_estimators"),
            ("features", "families"),
        }
        assert chosen, path
