"""Repository hygiene: no file names a folder of the machine it was written on, and settings come from the
environment in one place only (shared/settings.py)."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]

# Built by concatenation so that this file does not hold the paths it looks for. Flagged: the sandbox's work
# folder, root's home, Linux and macOS home folders of a named user, and Windows user folders.
_NOT_INSIDE_A_NAME = r"(?<![\w.])"  # a folder so named inside a relative path is not a machine path
MACHINE_PATH = re.compile(
    _NOT_INSIDE_A_NAME + "/" + "work/"
    + "|" + _NOT_INSIDE_A_NAME + "/" + "root/"
    + "|" + _NOT_INSIDE_A_NAME + "/" + "home/[A-Za-z]"
    + "|" + _NOT_INSIDE_A_NAME + "/" + "Users/[A-Za-z]"
    + "|" + r"\b[A-Za-z]:(?:\\{1,2}|/)" + "Users" + r"\b"
)


def repository_files() -> list[Path]:
    """Tracked files plus untracked files git does not ignore (new files count too); read-only git calls.
    Files deleted from the working tree but still tracked are left out."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode("utf-8", "surrogateescape")
    names = sorted({name for name in listed.split("\0") if name})
    return [REPO / name for name in names if (REPO / name).is_file() and not (REPO / name).is_symlink()]


def text_lines(path: Path) -> list[str] | None:
    """The lines of a text file, or ``None`` for a binary one (a NUL byte in its first 8 KiB)."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace").splitlines()


@pytest.mark.parametrize("text", [
    "/" + "work/shared/data/mnist_traindata.hdf5",
    'Path("/' + 'root/.keras")',
    "cd /" + "home/alice/hw3",
    "open('/" + "Users/bob/data.h5')",
    "C:" + "\\" + "Users\\carol",
    "C:" + "\\\\" + "Users\\\\carol",
])
def test_machine_path_pattern_flags_absolute_folders(text):
    assert MACHINE_PATH.search(text), text


@pytest.mark.parametrize("text", [
    "tests/" + "work/x.py",
    "~/.keras/datasets/fashion-mnist/",
    "/" + "home/",  # no user named
    "/tmp/hw3-pg-abc/data",
    "https://example.org/docs/" + "home/index.html",
])
def test_machine_path_pattern_leaves_relative_and_generic_paths(text):
    assert not MACHINE_PATH.search(text), text


def test_no_machine_specific_absolute_paths():
    files = repository_files()
    assert files, "git ls-files listed nothing: not run inside the repository checkout?"
    hits = []
    for path in files:
        lines = text_lines(path)
        for number, line in enumerate(lines or [], start=1):
            match = MACHINE_PATH.search(line)
            if match:
                hits.append(f"{path.relative_to(REPO)}:{number}: {match.group(0)!r} in {line.strip()[:120]}")
    assert not hits, ("machine-specific absolute paths (find data through the settings, HW3_DATASETS, or in tests "
                      "HW3_TEST_DATASETS / the real_datasets fixture):\n" + "\n".join(hits))


# ----------------------------------------------------------------------------- environment reads

SETTINGS_MODULE = "shared/settings.py"
SCANNED_FOLDERS = ("api", "worker", "shared", "benchmarks")
_WRITE_METHODS = {"setdefault", "update", "__setitem__", "__delitem__"}  # change the environment, return nothing read


def environment_reads(source: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every read of the process environment in Python ``source``: ``os.environ`` used as a
    value (``.get``, ``[key]``, ``dict(os.environ)``, ``{**os.environ}``, ...), ``os.getenv``, and the same names
    imported from ``os``. Writes (``os.environ[key] = v``, ``del os.environ[key]``, ``.setdefault``, ``.update``)
    are not reads."""
    tree = ast.parse(source)
    os_names, environ_names, getenv_names = {"os"}, set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            environ_names |= {a.asname or a.name for a in node.names if a.name in ("environ", "environb")}
            getenv_names |= {a.asname or a.name for a in node.names if a.name in ("getenv", "getenvb")}
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def is_environ(node) -> bool:
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb"):
            return isinstance(node.value, ast.Name) and node.value.id in os_names
        return isinstance(node, ast.Name) and node.id in environ_names

    def is_getenv(node) -> bool:
        if isinstance(node, ast.Attribute) and node.attr in ("getenv", "getenvb"):
            return isinstance(node.value, ast.Name) and node.value.id in os_names
        return isinstance(node, ast.Name) and node.id in getenv_names

    reads = []
    for node in ast.walk(tree):
        if is_getenv(node):
            reads.append((node.lineno, ast.unparse(parents.get(node, node))[:100]))
        elif is_environ(node):
            parent = parents.get(node)
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)):
                continue
            if (isinstance(parent, ast.Attribute) and parent.attr in _WRITE_METHODS
                    and isinstance(parents.get(parent), ast.Call)):
                continue
            shown = parents.get(parent, parent) if isinstance(parent, ast.Attribute) else parent
            reads.append((node.lineno, ast.unparse(shown if shown is not None else node)[:100]))
    return sorted(reads)


@pytest.mark.parametrize("source, n_reads", [
    ("import os\nx = os.environ.get('A')\n", 1),
    ("import os\nx = os.environ['A']\n", 1),
    ("import os\nenv = dict(os.environ)\n", 1),
    ("import os\nenv = {**os.environ, 'A': '1'}\n", 1),
    ("import os as o\nx = o.getenv('A')\n", 1),
    ("from os import environ\nx = environ.get('A')\n", 1),
    ("import os\nos.environ['A'] = '1'\ndel os.environ['A']\n", 0),
    ("import os\nos.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\nos.environ.update(A='1')\n", 0),
])
def test_environment_reads_detector(source, n_reads):
    assert len(environment_reads(source)) == n_reads, environment_reads(source)


def test_only_settings_reads_the_environment():
    hits = []
    for path in repository_files():
        relative = path.relative_to(REPO).as_posix()
        if path.suffix != ".py" or relative.split("/")[0] not in SCANNED_FOLDERS or relative == SETTINGS_MODULE:
            continue
        for line, what in environment_reads(path.read_text(encoding="utf-8")):
            hits.append(f"{relative}:{line}: {what}")
    assert not hits, ("the environment is read outside shared/settings.py (add a field to Settings and use "
                      "get_settings()):\n" + "\n".join(hits))
