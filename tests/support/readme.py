"""The README as a test script: its fenced blocks, their expected outputs, and a reader's shell.

Markers are HTML comments, invisible on the rendered page:
`<!-- readme-test: worked-example -->` … `<!-- readme-test: end -->` delimit the part that is run;
`<!-- readme-test: save-as NAME -->` before a block means "save this block as NAME";
`<!-- readme-test: eventually -->` before a command means its output may need a re-run (the
README says so where it applies); `<!-- readme-test: first-start -->` marks `keyrail up`'s output.

A ```text block right after a command is that command's expected output. In it `…` matches any
text within a line, a line that is only `…` matches any number of lines, and a run of spaces or
tabs matches any run of spaces or tabs (so the README may align tab-separated columns).
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ELLIPSIS = "…"
_MARK = re.compile(r"^<!--\s*readme-test:\s*(.+?)\s*-->\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_SECTION_MARKS = ("worked-example", "end")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based README line of the opening fence
    marks: list[str] = field(default_factory=list)


@dataclass
class Step:
    """One thing a reader does: run a command (`sh`) or save a file (`save-as`)."""

    block: Block
    expected: str | None = None

    @property
    def save_as(self) -> str | None:
        for mark in self.block.marks:
            if mark.startswith("save-as "):
                return mark.removeprefix("save-as ").strip()
        return None

    @property
    def eventually(self) -> bool:
        return "eventually" in self.block.marks


def blocks(text: str) -> list[Block]:
    """Every fenced block, with the markers on the lines before it (prose in between is fine)."""
    found: list[Block] = []
    marks: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        mark = _MARK.match(line)
        fence = _FENCE.match(line)
        if mark and mark.group(1) in _SECTION_MARKS:
            found.append(Block("marker", mark.group(1), index + 1))
        elif mark:
            marks.append(mark.group(1))
        elif fence:
            start = index
            index += 1
            body: list[str] = []
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            found.append(Block(fence.group(1), "\n".join(body) + "\n", start + 1, marks))
            marks = []
        index += 1
    return found


def marked_block(text: str, mark: str) -> Block:
    matches = [b for b in blocks(text) if mark in b.marks]
    assert len(matches) == 1, f"README.md must have exactly one block marked {mark!r}, has {len(matches)}"
    return matches[0]


def worked_example_steps(text: str) -> list[Step]:
    """The steps between the worked-example markers, each command with its expected output."""
    all_blocks = blocks(text)
    starts = [i for i, b in enumerate(all_blocks) if b.lang == "marker" and b.code == "worked-example"]
    ends = [i for i, b in enumerate(all_blocks) if b.lang == "marker" and b.code == "end"]
    assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0], "README.md lost its test markers"
    steps: list[Step] = []
    for block in all_blocks[starts[0] + 1 : ends[0]]:
        if block.lang == "text":
            assert steps and steps[-1].expected is None, f"README.md:{block.line}: output of what?"
            steps[-1].expected = block.code
        elif block.lang == "sh" or Step(block).save_as:
            steps.append(Step(block))
        else:
            raise AssertionError(f"README.md:{block.line}: a ```{block.lang} block the test cannot run")
    return steps


def line_pattern(line: str) -> str:
    parts = []
    for piece in re.split(r"([ \t]+)", line):
        if not piece:
            continue
        if piece.isspace():
            parts.append(r"[ \t]+")
        else:
            parts.append(r"[^\n]*".join(re.escape(p) for p in piece.split(ELLIPSIS)))
    return "".join(parts)


def output_pattern(expected: str) -> re.Pattern[str]:
    pattern = ""
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == ELLIPSIS:
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += line_pattern(line.rstrip()) + r"\n"
    return re.compile(pattern)


def normalise(output: str) -> str:
    lines = output.replace("\r\n", "\n").replace("\r", "").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def matches(expected: str, output: str) -> bool:
    return output_pattern(expected).fullmatch(normalise(output)) is not None


class ReaderShell:
    """One `bash` fed block by block, as a reader pastes into one terminal: variables, functions
    and background jobs carry over. Output is stdout and stderr together, as on a terminal.

    It runs in its own session, so stopping it (SIGTERM to its process group) also stops the
    background jobs the README started, and nothing else."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._chunks: queue.Queue[bytes] = queue.Queue()
        self._pending = ""
        self._marker = f"__readme_step_done_{secrets.token_hex(6)}__"
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self._chunks.put(chunk)
        self._chunks.put(b"")

    def _take(self, timeout_s: float) -> bool:
        """Move output that arrives within timeout_s into the pending text; False at EOF."""
        try:
            chunk = self._chunks.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return True
        if not chunk:
            return False
        self._pending += chunk.decode("utf-8", "replace")
        return True

    def run(self, script: str, timeout_s: float = 90.0) -> tuple[int, str]:
        """Run `script`; its exit status (of its last command) and everything it printed."""
        assert self.process.stdin is not None
        trailer = f"printf '\\n{self._marker} %s\\n' \"$?\"\n"
        self.process.stdin.write((script.rstrip("\n") + "\n" + trailer).encode())
        self.process.stdin.flush()
        done = re.compile(rf"\n{self._marker} (\d+)\n")
        deadline = time.monotonic() + timeout_s
        while not (found := done.search(self._pending)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end after {timeout_s:.0f}s; output so far:\n{self._pending}")
            if not self._take(deadline - time.monotonic()):
                raise RuntimeError(f"the shell exited; output:\n{self._pending}")
        output, self._pending = self._pending[: found.start()], self._pending[found.end() :]
        return int(found.group(1)), output

    def more_output(self, timeout_s: float) -> str:
        """Output that background jobs print within timeout_s (taken off the pending text)."""
        self._take(timeout_s)
        output, self._pending = self._pending, ""
        return output

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group is the shell's own session
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
