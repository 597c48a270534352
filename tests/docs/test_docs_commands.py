"""Every shell command in the README and the docs either runs here, at a tiny size, or is marked illustrative.

The harvester reads every fenced block whose language is bash, console, sh or shell in README.md and
docs/**/*.md. A block whose info string carries `title="illustrative"` is shown, not run (it needs a GPU, a
cluster, a download, a placeholder or hours). Every other block is run: the blocks of one page in order, in one
fresh temporary directory, each command through bash (a `$ ` prompt stripped, `\\` continuations joined), with
tiny-size overrides appended to `python -m adv_smooth` and `python -m adv_smooth.evaluate` commands unless the
command sets that key itself. The convention is documented in docs/how-to/docs-commands.md.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHELL = {"bash", "console", "sh", "shell"}
ILLUSTRATIVE = re.compile(r'title="illustrative"')
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,})(?P<info>.*)$")

TINY_TRAIN = [
    "trainer=cpu",
    "trainer.max_epochs=1",
    "model.width=8",
    "model.blocks=[1,1]",
    "eval.val_subset=0",
    "eval.test_subset=10",
    "eval.snr_levels=[33]",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
TINY_EVAL = ["eval.test_subset=10", "eval.snr_levels=[33]"]
TINY_MODEL = ["model.width=8", "model.blocks=[1,1]"]
# presets whose attacks are long: fewer steps and queries (keys of conf/eval/<preset>.yaml's attacks)
TINY_PRESET = {
    "strong": [
        *(f"eval.attacks.apgd_{kind}_{norm}.steps=5" for kind in ("ce", "t") for norm in ("l2", "linf")),
        *(f"eval.attacks.square_{norm}.queries=20" for norm in ("l2", "linf")),
    ],
}
ENTRY = re.compile(r"^python -m adv_smooth(?P<module>\.evaluate|\.report)?(\s|$)")
SHELL_UTILITIES = {"ls", "cat", "echo", "test", "mkdir", "cd", "head", "tail", "python"}


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository
    line: int
    info: str
    text: str

    @property
    def illustrative(self) -> bool:
        return bool(ILLUSTRATIVE.search(self.info))


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def shell_blocks(path: Path) -> list[Block]:
    """The fenced shell blocks of a Markdown file (fences nested in longer fences are content, not blocks)."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    open_fence: tuple[str, int, str, int] | None = None  # ticks, start line, info, indent
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if open_fence is None:
            if match:
                open_fence, body = (match["ticks"], number, match["info"].strip(), len(match["indent"])), []
            continue
        ticks, start, info, indent = open_fence
        if match and match["ticks"].startswith(ticks) and not match["info"].strip():
            language = info.split()[0] if info else ""
            if language in SHELL:
                blocks.append(Block(str(path.relative_to(REPO)), start, info, "\n".join(body)))
            open_fence = None
            continue
        body.append(line[indent:] if line[:indent].strip() == "" else line)
    assert open_fence is None, f"{path}: a fence opened at line {open_fence[1]} is never closed"
    return blocks


def commands(block: Block) -> list[str]:
    """The block's commands: prompts stripped, continuations joined, comments and blank lines dropped."""
    out, pending = [], ""
    for raw in block.text.splitlines():
        line = raw[2:] if raw.startswith("$ ") else raw
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _keys_set(tokens: list[str]) -> set[str]:
    return {token.lstrip("+~").split("=", 1)[0] for token in tokens if "=" in token or token.startswith("~")}


def tiny(command: str) -> str:
    """The command with tiny-size overrides appended (the keys it sets itself are left as written)."""
    match = ENTRY.match(command)
    tokens = shlex.split(command.split(" #")[0]) if match else []
    if not match or match["module"] == ".report" or {"--help", "--cfg", "--info"} & set(tokens):
        return command
    extra = TINY_EVAL if match["module"] == ".evaluate" else TINY_TRAIN
    if (
        match["module"] == ".evaluate"
        and any(t.startswith("weights=") for t in tokens)
        and "model=torchvision" not in tokens
    ):
        extra = extra + TINY_MODEL
    for token in tokens:
        if token.startswith("eval="):
            extra = extra + TINY_PRESET.get(token.split("=", 1)[1], [])
    own = _keys_set(tokens)
    added = [o for o in extra if o.lstrip("+~").split("=", 1)[0] not in own]
    return " ".join([shlex.join(tokens), *(shlex.quote(o) for o in added)])


def runnable_problem(command: str) -> str | None:
    """Why a command of a runnable block cannot run here (None: it can)."""
    if ENTRY.match(command):
        return "a placeholder (<...>) in a runnable command" if re.search(r"<[\w -]+>", command) else None
    first = command.split()[0]
    if first not in SHELL_UTILITIES or first == "python" and not command.startswith("python -c "):
        return f"{first!r} is neither an entry point nor a plain shell utility: mark the block illustrative"
    return None


ALL_BLOCKS = [block for page in pages() for block in shell_blocks(page)]
RUN_PAGES = sorted({block.page for block in ALL_BLOCKS if not block.illustrative})


def test_every_shell_block_is_runnable_or_marked_illustrative() -> None:
    problems = [
        f"{block.page}:{block.line}: {problem}"
        for block in ALL_BLOCKS
        if not block.illustrative
        for command in commands(block)
        if (problem := runnable_problem(command))
    ]
    assert not problems, "\n".join(problems)
    run = sum(len(commands(b)) for b in ALL_BLOCKS if not b.illustrative)
    shown = sum(len(commands(b)) for b in ALL_BLOCKS if b.illustrative)
    assert run >= 5 and shown >= 20, (run, shown)


def test_no_command_hides_in_an_indented_code_block() -> None:
    """Commands live in fenced blocks, where the harvester sees them (an indented block would escape it)."""
    hidden = []
    for page in pages():
        previous = ""
        inside_fence = False
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if FENCE.match(line):
                inside_fence = not inside_fence
            elif not inside_fence and re.match(r"^ {4}(python3? -m |pip install)", line) and not previous.strip():
                hidden.append(f"{page.relative_to(REPO)}:{number}")
            previous = line
    assert not hidden, hidden


def test_the_readme_keeps_the_two_set_up_commands() -> None:
    blocks = [b for b in ALL_BLOCKS if b.page == "README.md"]
    texts = [b.text.strip() for b in blocks]
    assert 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && python -m adv_smooth' in texts
    assert ". .venv/bin/activate && python -m pytest -q -n 2" in texts


def test_tiny_overrides_are_appended_unless_the_command_sets_the_key() -> None:
    command = tiny("python -m adv_smooth -m experiment=digits_demo 'eval.snr_levels=[45,33,20]'")
    assert "trainer.max_epochs=1" in command and "'eval.snr_levels=[45,33,20]'" in command
    assert "eval.snr_levels=[33]" not in command
    assert tiny("python -m adv_smooth.report multirun/demo") == "python -m adv_smooth.report multirun/demo"
    assert tiny("python -m adv_smooth --help") == "python -m adv_smooth --help"  # prints, trains nothing
    assert "model.width=8" in tiny("python -m adv_smooth.evaluate weights=w.ckpt model=preact_resnet18_small")
    assert "eval.attacks.square_linf.queries=20" in tiny("python -m adv_smooth.evaluate ckpt=a.ckpt eval=strong")


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_page_commands_run_at_a_tiny_size(page: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "1", "ADV_SMOOTH_DATA": str(tmp_path / "data")}
    for block in (b for b in ALL_BLOCKS if b.page == page and not b.illustrative):
        for command in commands(block):
            line = tiny(command)
            line = re.sub(r"^python ", f"{shlex.quote(sys.executable)} ", line)
            proc = subprocess.run(
                ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
            )
            assert proc.returncode == 0, f"{page}:{block.line}: {line}\n{proc.stderr[-3000:]}"
