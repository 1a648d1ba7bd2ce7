"""`workbench chat GGUF`: a plain terminal chat with a GGUF model, for scripts and quick checks.

Each line typed (or read from a pipe) is a user turn; the answer streams to stdout and a line
of timings (tokens, time to first token, tokens/s) goes to stderr. Ctrl+C stops an answer;
Ctrl+D or /exit leaves. `-p TEXT` answers one prompt and exits (`--json` for the figures).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TextIO

from workbench.chat.conversation import Conversation, send_to_data
from workbench.chat.engine import AnswerDone, ChatModel, ChatSettings, TokenStreamed
from workbench.chat.errors import ChatError
from workbench.cliutil import OK, PROBLEMS, UsageError, command
from workbench.workspace import Workspace, WorkspaceError, find_workspace, open_workspace

HELP = """commands:
  /help            this list
  /clear           forget the conversation (the system prompt stays)
  /regen           answer the last question again
  /system TEXT     set the system prompt (and clear the conversation)
  /save [ANSWER]   save the conversation as a training example tagged from-chat
                   (ANSWER replaces the last answer; needs a workspace)
  /exit            leave (Ctrl+D too); Ctrl+C stops an answer"""


def register(commands: Any) -> None:
    """Add `chat` to the `workbench` command."""
    sub = command(commands, "chat", "chat with a GGUF model in this terminal", cmd_chat)
    sub.add_argument("gguf", metavar="GGUF", help="a .gguf file, or an export id")
    sub.add_argument("--quant", help="with an export id: which of its files (default: first)")
    sub.add_argument("-p", "--prompt", help="answer this one prompt and exit")
    sub.add_argument("--json", action="store_true", help="with -p: print the answer as JSON")
    sub.add_argument("--system", help="system prompt (default: [chat] system_prompt)")
    for flag, kind, text in (
        ("--n-ctx", int, "context window in tokens"),
        ("--gpu-layers", int, "layers on the GPU (-1: all when possible)"),
        ("--temperature", float, "sampling temperature (0: greedy)"),
        ("--top-p", float, "nucleus sampling"),
        ("--max-tokens", int, "longest answer"),
        ("--repeat-penalty", float, "penalty on repeated tokens"),
        ("--seed", int, "sampling seed (-1: new each answer)"),
        ("--threads", int, "CPU threads (0: one per core)"),
    ):
        sub.add_argument(flag, type=kind, help=f"{text} (default: the [chat] setting)")
    sub.add_argument("--no-probe", action="store_true", help="skip the test run in a child process")


def cmd_chat(args: argparse.Namespace) -> int:
    workspace = _optional_workspace(args)
    settings = _settings(args, workspace)
    path = resolve_gguf(args.gguf, workspace, args.quant)
    try:
        model = ChatModel.load(path, settings, probe=not args.no_probe)
    except ChatError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return PROBLEMS
    with model:
        _describe(model)
        conversation = Conversation(settings.system_prompt)
        if args.prompt is not None:
            return _one_shot(model, conversation, args.prompt, settings, args.json)
        return Repl(model, conversation, settings, workspace).run(sys.stdin)


def _optional_workspace(args: argparse.Namespace) -> Workspace | None:
    """The workspace given by -w, else the one around the current directory, else none."""
    given: Path | None = getattr(args, "workspace", None)
    if given is not None:
        return open_workspace(given)
    found = find_workspace(Path.cwd())
    try:
        return open_workspace(found) if found else None
    except WorkspaceError:
        return None


def _settings(args: argparse.Namespace, workspace: Workspace | None) -> ChatSettings:
    """The [chat] settings (defaults without a workspace), with the flags on top."""
    base = ChatSettings.from_config(workspace.config.chat) if workspace else ChatSettings()
    flags = {
        "n_ctx": args.n_ctx,
        "n_gpu_layers": args.gpu_layers,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "max_tokens": args.max_tokens,
        "repeat_penalty": args.repeat_penalty,
        "seed": args.seed,
        "threads": args.threads,
        "system_prompt": args.system,
    }
    return replace(base, **{key: value for key, value in flags.items() if value is not None})


def resolve_gguf(given: str, workspace: Workspace | None, quant: str | None = None) -> Path:
    """A GGUF path from a path or an export id of the workspace.

    Raises:
        UsageError: neither an existing file nor an export with that file.
    """
    path = Path(given).expanduser()
    if path.exists() or workspace is None:
        return path
    from workbench.export.manifest import read_manifest

    export_dir = workspace.exports_dir / given
    manifest = read_manifest(export_dir)
    if manifest is None or not manifest.files:
        raise UsageError(f"{given}: no such file, and no finished export with that id")
    chosen = manifest.path_of(export_dir, quant) if quant else export_dir / manifest.files[0].file
    if chosen is None:
        raise UsageError(
            f"export {given} has no {quant} file (it has {', '.join(manifest.quants)})"
        )
    return chosen


def _describe(model: ChatModel) -> None:
    info, loaded = model.info, model.loaded
    where = (
        f"{loaded.gpu_layers} layers on GPU"
        if loaded.gpu_layers
        else f"CPU, {loaded.threads} threads"
    )
    template = {"gguf": "its own chat template", "given": "the given chat template"}.get(
        loaded.template_source, "no chat template in the file: ChatML"
    )
    print(
        f"{info.name} · {info.architecture} {info.quantization} · n_ctx {loaded.context_size} · "
        f"{where} · {template}",
        file=sys.stderr,
    )


def _one_shot(
    model: ChatModel, conversation: Conversation, prompt: str, settings: ChatSettings, as_json: bool
) -> int:
    try:
        done = model.answer(conversation.ask(prompt), settings)
    except ChatError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return PROBLEMS
    if as_json:
        print(json.dumps({"model": str(model.path), **asdict(done)}))
    else:
        print(done.text)
        print(stats_line(done), file=sys.stderr)
    return OK


def stats_line(done: AnswerDone) -> str:
    """`[42 tokens · first token 0.21 s · 37.5 tokens/s · end]`."""
    return (
        f"[{done.completion_tokens} tokens · first token {done.time_to_first_token_s:.2f} s · "
        f"{done.tokens_per_s:.1f} tokens/s · {done.stop_reason}]"
    )


class Repl:
    """The read-answer loop."""

    def __init__(
        self,
        model: ChatModel,
        conversation: Conversation,
        settings: ChatSettings,
        workspace: Workspace | None,
        out: TextIO | None = None,
    ) -> None:
        self.model = model
        self.conversation = conversation
        self.settings = settings
        self.workspace = workspace
        self.out = out or sys.stdout

    def run(self, lines: TextIO) -> int:
        interactive = lines.isatty()
        if interactive:
            print("Type a message; /help for commands.", file=sys.stderr)
        while True:
            if interactive:
                print("you> ", end="", file=sys.stderr, flush=True)
            try:
                line = lines.readline()
            except KeyboardInterrupt:
                print(file=sys.stderr)
                return OK
            if not line:
                return OK
            text = line.rstrip("\n")
            if text.strip() and not self.handle(text):
                return OK

    def handle(self, text: str) -> bool:
        """Carry out one line; False to leave."""
        command, _, rest = text.strip().partition(" ")
        if command in ("/exit", "/quit"):
            return False
        actions = {
            "/help": lambda: print(HELP, file=sys.stderr),
            "/clear": self.clear,
            "/regen": self.regenerate,
            "/system": lambda: self.set_system(rest),
            "/save": lambda: self.save(rest or None),
        }
        action = actions.get(command) if text.startswith("/") else None
        if text.startswith("/") and action is None:
            print(f"unknown command {command}; /help lists them", file=sys.stderr)
        elif action is not None:
            action()
        else:
            self.answer(self.conversation.ask(text))
        return True

    def answer(self, messages: list[dict[str, str]]) -> None:
        """Stream an answer; Ctrl+C stops it (the partial answer is kept)."""
        cancel = threading.Event()
        pieces: list[str] = []
        done: AnswerDone | None = None
        try:
            with contextlib.closing(self.model.stream(messages, self.settings, cancel)) as events:
                for event in events:
                    if isinstance(event, TokenStreamed):
                        pieces.append(event.text)
                        self.out.write(event.text)
                        self.out.flush()
                    elif isinstance(event, AnswerDone):
                        done = event
        except KeyboardInterrupt:
            cancel.set()
        except ChatError as exc:
            self.conversation.turns.pop()
            print(f"\nworkbench: {exc}", file=sys.stderr)
            return
        self.out.write("\n")
        self.conversation.answered(done.text if done else "".join(pieces))
        print(stats_line(done) if done else "[stopped]", file=sys.stderr)

    def clear(self) -> None:
        self.conversation.clear()
        print("[conversation cleared]", file=sys.stderr)

    def regenerate(self) -> None:
        try:
            messages = self.conversation.regenerate()
        except ChatError as exc:
            print(str(exc), file=sys.stderr)
            return
        self.answer(messages)

    def set_system(self, text: str) -> None:
        self.conversation.system_prompt = text
        self.conversation.clear()
        print("[system prompt set; conversation cleared]", file=sys.stderr)

    def save(self, answer: str | None) -> None:
        if self.workspace is None:
            print("no workspace: run from a workspace or pass -w DIR to save", file=sys.stderr)
            return
        from workbench.data.store import ExampleStore

        try:
            with ExampleStore(self.workspace.db_path) as store:
                example_id = send_to_data(store, self.conversation, answer, self.model.path.name)
        except ChatError as exc:
            print(str(exc), file=sys.stderr)
            return
        print(f"[saved as example {example_id}, tagged from-chat]", file=sys.stderr)
