"""Every reference a page makes resolves: the README, docs/ and the notebooks' sources (jupytext) are read once,
and each command line, Python name and repository path they show is checked against what exists now.

* **Command lines** (code blocks and inline code): ``dynnn ...`` and ``python -m dynnn_lib.cli ...`` parse with
  the real parser (every flag exists, every value is accepted); ``make X`` names a Makefile target. Only the
  command is parsed: prompts, comments, pipes, redirections and ``&&`` are cut off; ``<placeholder>`` and ``...``
  stand for values, ``[--flag V]`` for an optional part. An inline ``dynnn <command>`` alone names the command.
* **Python names**: Python code blocks and the notebooks' code cells are parsed; every ``import`` of dynnn_lib
  imports, every attribute read off a name so imported exists, and a call to a function so reached binds to its
  signature; a dotted ``dynnn_lib.x.y`` in inline code resolves.
* **Paths**: markdown links and inline code that looks like a repository path (it has a ``/`` and starts at a
  folder of the repository or of dynnn_lib) exist: from the repository's root, the page's folder, or dynnn_lib/
  (pages name the package's modules as ``core/config.py``); ``core/streams.NAME`` names a constant of that
  module. A file that exists only once a command ran (``reports/...``) is accepted when :data:`PRODUCED` lists
  it and the paragraph that cites it names one of its producers (``make all``, ``dynnn fidelity``, ...): a
  reader who lacks the file learns there how to make it. ``runs/`` is the run cache every training command fills.

Each test lists every problem it found (page:line: what), not the first one.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import inspect
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "notebooks").glob("*.py"))]

# Files that exist only after a command ran: pattern (fnmatch-style, from the repository's root) -> the commands
# that write them (reports/README.md lists each; a test below keeps the two in step).
PRODUCED: dict[str, tuple[str, ...]] = {
    "reports/reproduction.*": ("make all", "make reproduce", "dynnn reproduce"),
    "reports/fidelity*": ("make all", "make fidelity", "dynnn fidelity"),
    "reports/standins.*": ("make all", "make fidelity", "dynnn fidelity"),
    "reports/calibration.*": ("make all", "make calibration", "dynnn calibrate"),
    "reports/phases.json": ("make all",),
    "reports/index.html": ("make all", "make notebooks", "dynnn batch"),
    "reports/summary.md": ("make all", "make notebooks", "dynnn batch"),
    "reports/executed/*": ("make all", "make notebooks", "dynnn batch"),
    "reports/baselines.*": ("make baselines", "dynnn baselines"),
    "reports/schedules.*": ("make schedules", "dynnn schedules"),
    "reports/sharing.*": ("make sharing",),
    "reports/speed.md": ("make speed",),
    "reports/benchmarks.md": ("make bench",),
    "reports/sweeps/*": ("dynnn sweep",),
    "reports/runs/*": ("dynnn export",),
}
RUN_CACHE = "runs"  # every command that trains fills it (docs/results.md)


@dataclass
class Segment:
    """A stretch of a page: prose (markdown) or code, with the page line its first line is on."""

    kind: str  # prose | code
    lang: str
    line: int
    text: str

    def line_of(self, pos: int) -> int:
        return self.line + self.text.count("\n", 0, pos)


def _markdown_segments(text: str) -> list[Segment]:
    """Prose between fences (fenced lines blanked, so positions keep their line) and each fenced block."""
    out, prose, block, lang, start = [], [], None, "", 0
    for i, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^```(\w*)", line)
        if fence and block is None:
            block, lang, start = [], fence.group(1), i + 1
            prose.append("")
        elif fence:
            out.append(Segment("code", lang, start, "\n".join(block)))
            block = None
            prose.append("")
        elif block is not None:
            block.append(line)
            prose.append("")
        else:
            prose.append(line)
    return [Segment("prose", "", 1, "\n".join(prose)), *out]


def _notebook_segments(text: str) -> list[Segment]:
    """A jupytext percent file: markdown cells (their ``# `` taken off) are prose, the other cells Python; a
    module without cells (notebooks/novelty.py) is one Python block."""
    lines = text.splitlines()
    starts = [i for i, l in enumerate(lines) if l.startswith("# %%")]
    if not starts:
        return [Segment("code", "python", 1, text)]
    out = []
    for a, b in zip(starts, [*starts[1:], len(lines)]):
        body = lines[a + 1:b]
        if "[markdown]" in lines[a]:
            out.append(Segment("prose", "", a + 2, "\n".join(re.sub(r"^# ?", "", l) for l in body)))
        else:
            out.append(Segment("code", "python", a + 2, "\n".join(body)))
    return out


@functools.lru_cache(maxsize=None)
def segments(page: Path) -> tuple[Segment, ...]:
    text = page.read_text()
    return tuple(_notebook_segments(text) if page.suffix == ".py" else _markdown_segments(text))


def where(page: Path, seg: Segment, pos: int) -> str:
    return f"{_name(page)}:{seg.line_of(pos)}"


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name


def inline_spans(seg: Segment):
    """(position, text) of each inline code span of a prose segment; a span wrapped over lines is one span."""
    for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", seg.text):
        yield m.start(), " ".join(m.group(1).split())


# ------------------------------------------------------------------ command lines
COMMAND = re.compile(r"^(?:\S*/)?(?:(dynnn)|python3? -m dynnn_lib\.cli|(make))(?:\s+(.*))?$")
SHELL_CODE = ("", "bash", "sh", "shell", "console")


def _shell_commands(line: str) -> list[str]:
    """The simple commands of one shell line: placeholders made values, the prompt, comment, redirections and
    the operators between commands cut off."""
    line = re.sub(r"<[^<>]+>", "X", line.strip())
    line = re.sub(r"^\$\s+", "", line)
    line = re.sub(r"(^|\s)#.*$", "", line)
    line = re.sub(r"\s\d?>>?&?\s*\S+|\s<\s*\S+", "", line)
    return [part.strip() for part in re.split(r"&&|\|\|?|;", line) if part.strip()]


def _logical_lines(text: str):
    """(index of its first line, line) of a shell block, lines continued with a backslash joined."""
    held: list[str] = []
    first = 0
    for i, line in enumerate(text.split("\n")):
        if not held:
            first = i
        held.append(line[:-1] if line.endswith("\\") else line)
        if not line.endswith("\\"):
            yield first, " ".join(held)
            held = []


def command_lines(page: Path):
    """(where, command line, inline?) of every dynnn / make command the page shows."""
    for seg in segments(page):
        if seg.kind == "code" and seg.lang in SHELL_CODE:
            for first, line in _logical_lines(seg.text):
                for cmd in _shell_commands(line):
                    cmd = re.sub(r"^(?:\w+=\S*\s+)+", "", cmd)  # VAR=value dynnn ...
                    if COMMAND.match(cmd):
                        yield f"{_name(page)}:{seg.line + first}", cmd, False
        elif seg.kind == "prose":
            for pos, span in inline_spans(seg):
                if COMMAND.match(span):
                    yield where(page, seg, pos), span, True


@functools.lru_cache(maxsize=None)
def _parser():
    from dynnn_lib.cli import build_parser

    return build_parser()


def _subcommands() -> set[str]:
    return set(next(a for a in _parser()._actions if a.dest == "command").choices)


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def check_command(cmd: str, inline: bool) -> str | None:
    """Why `cmd` does not run as shown (None: it does). An inline ``dynnn <command>`` alone names the command."""
    m = COMMAND.match(cmd)
    args = m.group(3) or ""
    if inline and not args:
        return None  # the tool itself named
    if m.group(2):
        bad = [t for t in args.split() if "=" not in t and t not in _make_targets()]
        return f"make {bad[0]}: no such target in the Makefile" if bad else None
    argv = shlex.split(re.sub(r"\[(--[^\[\]]*)\]", r"\1", args).replace("...", " "))
    if inline and len(argv) == 1 and re.fullmatch(r"[\w-]+", argv[0]):
        return None if argv[0] in _subcommands() else f"dynnn {argv[0]}: no such command"
    why = _parse_error(argv)
    return f"`{cmd}` does not parse: {why}" if why else None


def _parse_error(argv: list[str]) -> str | None:
    """argparse's message for `argv` (None: it parses). A placeholder (``N``, ``G``: capitals) where a number is
    wanted stands for one: it is read as 1 and the line parsed again."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _parser().parse_args(argv)
        return None
    except SystemExit as e:
        if not e.code:
            return None
    why = err.getvalue().strip().splitlines()[-1]
    number = re.search(r"invalid (?:int|float) value: '([A-Z][A-Z_]*)'", why)
    if number and number.group(1) in argv:
        return _parse_error([("1" if a == number.group(1) else a) for a in argv])
    return why


def _presets_named(page: Path):
    """(where, name) for prose that calls a name a preset ("`round1` stays a preset", "the preset `tiny`")."""
    for seg in segments(page):
        if seg.kind == "prose":
            for m in re.finditer(r"`([\w-]+)`\s+(?:stays|is|remains)\s+a\s+preset|preset\s+`([\w-]+)`", seg.text):
                yield where(page, seg, m.start()), m.group(1) or m.group(2)


def command_problems(pages) -> list[str]:
    from dynnn_lib.core.config import PRESETS

    problems = [f"{w}: {why}" for p in pages for w, cmd, inline in command_lines(p)
                if (why := check_command(cmd, inline))]
    problems += [f"{w}: `{name}` is called a preset; --preset takes {', '.join(sorted(PRESETS))}"
                 for p in pages for w, name in _presets_named(p) if name not in PRESETS]
    return problems


def test_every_command_line_on_a_page_parses():
    problems = command_problems(PAGES)
    assert not problems, "command lines that do not run as shown:\n" + "\n".join(problems)


def test_the_pages_show_command_lines_and_the_check_catches_bad_ones():
    shown = [cmd for p in PAGES for _, cmd, _ in command_lines(p)]
    assert len(shown) > 60 and sum(c.startswith("make") for c in shown) > 5
    assert check_command("dynnn run --preset round1", False).endswith("invalid choice: 'round1' (choose from 'tiny')")
    assert "unrecognized arguments: --nope" in check_command("dynnn runs --nope", False)
    assert check_command("dynnn nope", True) == "dynnn nope: no such command"
    assert check_command("make nope", False) == "make nope: no such target in the Makefile"
    assert check_command("dynnn show", True) is None and check_command("make test VENV=x", False) is None
    assert check_command("dynnn prune [--max-gb G]", True) is None
    assert check_command("dynnn run --set base_milestones=[8]", False) is None
    assert "invalid float value: 'g'" in check_command("dynnn prune --max-gb g", True)
    assert _shell_commands("$ dynnn runs --disk | head > out.txt 2>&1 && make test  # c") == ["dynnn runs --disk",
                                                                                              "head", "make test"]


# ------------------------------------------------------------------ Python names
def resolve(dotted: str):
    """The object a dotted name of dynnn_lib names: the longest importable module, then attributes (a submodule
    not imported yet is imported). Raises ImportError / AttributeError naming what is missing."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, name in enumerate(parts[1:], 1):
        if hasattr(obj, name):
            obj = getattr(obj, name)
        elif inspect.ismodule(obj):
            try:
                obj = importlib.import_module(".".join(parts[:i + 1]))
            except ModuleNotFoundError:
                raise AttributeError(f"{'.'.join(parts[:i])} has no {name}") from None
        else:
            raise AttributeError(f"{'.'.join(parts[:i])} has no {name}")
    return obj


def _bindings(tree: ast.AST) -> dict[str, str]:
    """Local name -> the dotted dynnn_lib name an import binds to it (names the block assigns itself are left
    out: they no longer hold what was imported)."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "dynnn_lib":
                    bound[a.asname or "dynnn_lib"] = a.name if a.asname else "dynnn_lib"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dynnn_lib":
            for a in node.names:
                bound[a.asname or a.name] = f"{node.module}.{a.name}"
    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return {k: v for k, v in bound.items() if k not in assigned}


def _dotted(node: ast.AST, bound: dict[str, str]) -> str | None:
    """`baselines.report` -> 'dynnn_lib.experiments.baselines.report' when its root name was imported."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, bound)
        return f"{base}.{node.attr}" if base else None
    return None


def _call_problem(node: ast.Call, obj) -> str | None:
    """Why the call's arguments do not bind to `obj`'s signature (None: they do, or it cannot be told)."""
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return None
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*node.args, **{k.arg: k.value for k in node.keywords})
    except TypeError as e:
        return f"{ast.unparse(node.func)}(...): {e}"
    return None


def code_problems(source: str) -> list[tuple[int, str]]:
    """(line in the block, what) for one block of Python: its dynnn_lib imports, the attributes read off what
    they bind, and the calls of module-level functions and classes so reached."""
    source = re.sub(r"^\s*[%!].*$", "", source, flags=re.M)  # IPython magics and shell escapes
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [(e.lineno or 1, f"does not parse as Python: {e.msg}")]
    bound, out = _bindings(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dynnn_lib":
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) or isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            names = [_dotted(node.func if isinstance(node, ast.Call) else node, bound)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.split(".")[0] == "dynnn_lib"]
        else:
            continue
        for dotted in filter(None, names):
            try:
                obj = resolve(dotted)
            except (ImportError, AttributeError) as e:
                out.append((node.lineno, str(e)))  # a.b.c and a.b, both read, name the same missing b
                continue
            if isinstance(node, ast.Call) and inspect.ismodule(resolve(dotted.rsplit(".", 1)[0])):
                why = _call_problem(node, obj)
                out += [(node.lineno, why)] if why else []
    return sorted(set(out))


def _named_in_spans(seg: Segment):
    """(position, dotted name) of each ``dynnn_lib.x.y`` in the prose's inline code."""
    for pos, span in inline_spans(seg):
        for name in re.findall(r"\bdynnn_lib(?:\.\w+)+", span):
            yield pos, name


def python_problems(pages) -> list[str]:
    problems = []
    for page in pages:
        for seg in segments(page):
            if seg.kind == "code" and seg.lang in ("python", "py"):
                problems += [f"{_name(page)}:{seg.line + n - 1}: {why}" for n, why in code_problems(seg.text)]
            elif seg.kind == "prose":
                for pos, name in _named_in_spans(seg):
                    try:
                        resolve(name)
                    except (ImportError, AttributeError) as e:
                        problems.append(f"{where(page, seg, pos)}: `{name}`: {e}")
    return problems


def test_every_python_name_on_a_page_resolves():
    problems = python_problems(PAGES)
    assert not problems, "Python names that do not resolve:\n" + "\n".join(problems)


def test_the_python_check_catches_a_missing_function_and_a_bad_call():
    block = ("from dynnn_lib.experiments import baselines\n"
             "summaries = baselines.compare(seeds=range(5), extra=['mine'])\n"
             "text, numbers = baselines.report(summaries)\n"
             "baselines.compare(seed=3)\n"
             "from dynnn_lib.engine.runner import nope\n")
    found = code_problems(block)
    assert [n for n, _ in found] == [3, 4, 5], found
    assert "has no report" in found[0][1] and "unexpected keyword argument 'seed'" in found[1][1]
    assert code_problems("import dynnn_lib.core.config as c\nc.RunConfig(method='kd').key()\nx = 1\nx.y") == []
    assert code_problems("%matplotlib inline\nfrom dynnn_lib import run") == []


# ------------------------------------------------------------------ paths
def _roots() -> set[str]:
    """The first folders a repository path can start at: the repository's, dynnn_lib's, and the produced ones."""
    return {p.name for p in [*ROOT.iterdir(), *(ROOT / "dynnn_lib").iterdir()] if p.is_dir()} | {"reports", RUN_CACHE}


def _expand(span: str) -> list[str]:
    """`reports/fidelity.md|html|json` -> each file; `<name>` -> a wildcard."""
    span = re.sub(r"<[^<>]+>", "*", span.rstrip("/") or "/")
    head, *alternatives = span.split("|")
    return [head, *(re.sub(r"\.[\w-]+$", f".{alt}", head) for alt in alternatives)]


def path_refs(page: Path):
    """(where, path, paragraph) of every markdown link to a file and every inline code span that looks like a
    repository path, with the paragraph it stands in."""
    for seg in segments(page):
        if seg.kind != "prose":
            continue
        for para in re.finditer(r"(?:[^\n]+\n?)+", seg.text):
            text = para.group(0)
            for m in re.finditer(r"\]\(([^)\s]+)\)", text):
                if not re.match(r"[a-z]+:|#", m.group(1)):
                    yield where(page, seg, para.start() + m.start()), m.group(1).split("#")[0], text, True
            for pos, span in inline_spans(Segment("prose", "", 0, text)):
                if (re.fullmatch(r"[\w.<>{}*|/-]+", span) and "/" in span and not span.startswith("path/to/")
                        and span.split("/")[0] in _roots()):
                    for path in _expand(span):
                        yield where(page, seg, para.start() + pos), path, text, False


def _exists(page: Path, path: str, link: bool) -> bool:
    """The path (a wildcard allowed) exists from the page's folder, or for code the repository's root or
    dynnn_lib/; `module/file.NAME` names a constant, function or class that module defines."""
    bases = [page.parent] if link else [page.parent, ROOT, ROOT / "dynnn_lib"]
    if any(any(b.glob(path)) if "*" in path else (b / path).exists() for b in bases):
        return True
    m = re.fullmatch(r"(.+)\.([A-Za-z_]\w*)", path)
    return bool(m) and any((b / f"{m.group(1)}.py").exists() and re.search(
        rf"^(?:def |class )?{m.group(2)}\b", (b / f"{m.group(1)}.py").read_text(), flags=re.M) for b in bases)


def _producers(path: str) -> tuple[str, ...] | None:
    """Who makes `path` when it is not in the repository (None: nobody; () the run cache, made by any run)."""
    from fnmatch import fnmatch

    if path == RUN_CACHE or path.startswith(RUN_CACHE + "/"):
        return ()
    return next((who for pattern, who in PRODUCED.items() if fnmatch(path, pattern)), None)


def _path_problem(page: Path, path: str, para: str, link: bool) -> str | None:
    """Why a cited path does not resolve. A produced path is judged by its paragraph whether or not it is here
    (after `make all` it is, in a fresh clone not: the verdict must not depend on which)."""
    who = _producers(os.path.relpath(page.parent / path, ROOT) if link else path)
    if who is None:
        return None if _exists(page, path, link) else f"{path} does not exist"
    if who and not any(p in " ".join(para.split()) for p in who):
        return f"{path} exists only after {' or '.join(who)}, which the paragraph does not name"
    return None


def path_problems(pages) -> list[str]:
    return [f"{w}: {why}" for page in pages for w, path, para, link in path_refs(page)
            if (why := _path_problem(page, path, para, link))]


def test_every_path_on_a_page_exists_or_its_paragraph_says_what_makes_it():
    problems = path_problems(PAGES)
    assert not problems, "paths that do not resolve:\n" + "\n".join(problems)


def test_the_path_check_catches_a_missing_file_and_an_unexplained_report(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("See `reports/calibration.md` and [the fit](nowhere.md).\n\n"
                    "Made by `make all`: `reports/fidelity.md|json`; `params/nope.yaml`, `core/streams.py`,\n"
                    "`core/streams.NOPE`, `evaluation/stats.MARGIN`, `runs/<key>/result.json`, `<root>/train/x`.\n")
    assert sorted(path_problems([page])) == [
        "page.md:1: nowhere.md does not exist",
        "page.md:1: reports/calibration.md exists only after make all or make calibration or dynnn calibrate, which "
        "the paragraph does not name", "page.md:3: params/nope.yaml does not exist",
        "page.md:4: core/streams.NOPE does not exist"]


def test_the_produced_table_is_the_one_reports_readme_gives():
    """Every file the table says a command makes is listed in reports/README.md, and each producer is a real
    make target or dynnn command."""
    listed = (ROOT / "reports" / "README.md").read_text()
    for pattern, producers in PRODUCED.items():
        stem = pattern.split("/")[1].split("*")[0].split(".")[0]
        assert f"`{stem}" in listed, f"{pattern}: not in reports/README.md"
        for who in producers:
            assert check_command(who, True) is None, who
