"""`hw3-submit datasets`: the input files of the four problems — `check` lists what the datasets folder holds,
`fetch` downloads MNIST and Fashion-MNIST into it. These, and a job command's --download, are the only network
access the client makes."""
from __future__ import annotations

import contextlib
import json
import shlex
import sys
from pathlib import Path

import click

from shared import datasets
from shared.settings import get_settings

FOLDER_HELP = ("the datasets folder; a relative path is taken from the current folder  [default: HW3_DATASETS, "
               "as this command sees it]")
DOWNLOAD_HELP = ("download the data set(s) the job reads into its datasets folder (--datasets, default "
                 "HW3_DATASETS, as this command sees it) first, when missing; the files are converted and "
                 "checked by loading them back (same as `hw3-submit datasets fetch`)")


def folder_of(option: str | None) -> Path:
    """The folder `--datasets` names (made absolute against the current folder), else HW3_DATASETS.
    ValueError for a malformed option."""
    given = datasets.check_datasets_option(option)
    return Path(given) if given is not None else get_settings().datasets_dir


def _say(line: str) -> None:
    click.echo(line, err=True)


def download(names, folder: Path) -> list[str]:
    """Fetch each data set of `names` (keys of datasets.FETCHERS) into `folder`, keeping the files already
    there; progress goes to stderr, Keras' own download bar included. Returns a line per data set saying what
    was done. DatasetError when a download fails or what was written does not load back as downloaded."""
    done = []
    with contextlib.redirect_stdout(sys.stderr):  # Keras draws its progress bar on stdout
        for name in names:
            written = datasets.FETCHERS[name](folder, say=_say)
            done.append(f"{name}: wrote and verified {', '.join(str(p.relative_to(folder)) for p in written)} "
                        f"in {folder}" if written else f"{name}: already in {folder}, nothing downloaded")
    return done


def fetch_for_job(names, option: str | None) -> None:
    """A job command's --download: fetch `names` into the job's folder, or exit with one `error:` line (2 for a
    malformed --datasets, 1 when the download fails)."""
    try:
        folder = folder_of(option)
    except ValueError as exc:
        _say(f"error: {exc}")
        sys.exit(2)
    try:
        for line in download(names, folder):
            _say(line)
    except datasets.DatasetError as exc:
        _say(f"error: {exc}")
        sys.exit(1)


def _folder_option(ctx, param, value) -> Path:
    try:
        return folder_of(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _shapes(shapes: dict) -> str:
    return ", ".join(str(tuple(shape)) if key == "shape" else f"{key} {tuple(shape)}" for key, shape in shapes.items())


@click.group("datasets")
def datasets_group() -> None:
    """The input files: list what the datasets folder holds, or download MNIST and Fashion-MNIST into it."""


@datasets_group.command("check")
@click.option("--datasets", "folder", callback=_folder_option, help=FOLDER_HELP)
@click.option("--json", "as_json", is_flag=True, help="print the list as JSON")
def check(folder: Path, as_json: bool) -> None:
    """One line per input the four problems read: ok with its shapes, missing, or invalid with the reason.
    Every file is loaded and validated as a worker loads it. Exit 0 when all are present and valid, else 1."""
    statuses = datasets.inspect_folder(folder)
    ok = all(s.ok for s in statuses)
    if as_json:
        click.echo(json.dumps({"folder": str(folder), "ok": ok, "inputs": [s.to_dict() for s in statuses]}, indent=2))
        sys.exit(0 if ok else 1)
    click.echo(f"datasets folder: {folder}")
    width = max(len(s.file) for s in statuses)
    for s in statuses:
        detail = _shapes(s.shapes) if s.ok else s.reason
        click.echo(f"  {s.file:<{width}}  {s.status:<7}  {s.used_by}: {detail}")
    bad = [s for s in statuses if not s.ok]
    if not bad:
        click.echo(f"all {len(statuses)} inputs of the four problems are present and valid")
        sys.exit(0)
    fetchable = {"mnist": datasets.MNIST_INPUTS, "fashion-mnist": datasets.FASHION_INPUTS}
    missing = [name for name, files in fetchable.items() if any(s.file in files and s.status == "missing" for s in bad)]
    advice = []
    if missing:
        named = "" if folder == get_settings().datasets_dir else f" --datasets {shlex.quote(str(folder))}"
        advice.append(f"`hw3-submit datasets fetch {missing[0] if len(missing) == 1 else 'all'}{named}` downloads what "
                      f"is missing of {' and '.join(missing)}")
    if any(s.status == "invalid" for s in bad):
        advice.append("replace the invalid files (fetch writes only missing ones)")
    if any(s.file == datasets.HUMAN_MACHINE_PATTERN for s in bad):
        advice.append("the human/machine file is the course's (human-machine also runs with --synthetic)")
    summary = f"{len(bad)} of {len(statuses)} inputs missing or invalid"
    click.echo(f"{summary}: {'; '.join(advice)}" if advice else summary)
    sys.exit(1)


@datasets_group.command("fetch")
@click.argument("which", type=click.Choice(["mnist", "fashion-mnist", "all"]), default="all")
@click.option("--datasets", "folder", callback=_folder_option, help=FOLDER_HELP)
def fetch(which: str, folder: Path) -> None:
    """Download MNIST and/or Fashion-MNIST (default: both) with tf.keras.datasets, write them in the layout the
    loaders read (the two course MNIST files; fashion-mnist/ with its four IDX files), and load them back to
    verify them. Files already present are kept."""
    names = list(datasets.FETCHERS) if which == "all" else [which]
    try:
        for line in download(names, folder):
            click.echo(line)
    except datasets.DatasetError as exc:
        _say(f"error: {exc}")
        sys.exit(1)
