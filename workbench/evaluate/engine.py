"""The evaluation job: `run_eval(eval_dir, cancel) -> Iterator[EvalEvent]`.

For every item of the frozen eval set it gets the fine-tuned model's answer (one at a time, in
a dedicated thread: llama.cpp), the old pipeline's answer (concurrently) and, as soon as both
exist, the two judgments (concurrently, bounded by `concurrency`). Each item is written to
`results.jsonl` when done, so live progress, the results table and resume all read the same file.
With `batch` the judgments go to one Message Batch after all answers exist instead.

The async work runs in a private event loop on a background thread; the caller iterates events
and sets `cancel` to stop (the answer being generated is finished first, then the eval ends
`stopped` and can be resumed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from workbench.evaluate.aggregate import combine, side_of
from workbench.evaluate.baselines import Baseline, make_baseline
from workbench.evaluate.cache import CACHE_FILE, ResultCache
from workbench.evaluate.evalset import EvalItem, read_items
from workbench.evaluate.events import (
    BatchUpdate,
    EvalEvent,
    EvalWarning,
    Finished,
    ItemJudged,
    Phase,
    Progress,
    Started,
)
from workbench.evaluate.generate import Generation, Generator, LlamaCppGenerator
from workbench.evaluate.judge import Judge, JudgeFatal, Verdict, make_client, run_batch
from workbench.evaluate.results import (
    ItemResult,
    append_generation,
    append_result,
    judge_totals,
    latest_results,
    outcome_tally,
    read_generations,
    read_result_lines,
)
from workbench.evaluate.spec import EvalError, EvalSpec, load_spec

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

BATCH_FILE = "batch.json"
T = TypeVar("T")
CANCEL_POLL_S = 0.1


def run_eval(
    eval_dir: Path, cancel: threading.Event, candidate: Generator | None = None
) -> Iterator[EvalEvent]:
    """Run (or resume) the eval in `eval_dir`; the last event is always `Finished`.

    `candidate` replaces the GGUF named in the spec (any `Generator`; it is not closed here).
    """
    events: queue.Queue[EvalEvent | None] = queue.Queue()
    run = _EvalRun(eval_dir, cancel, candidate, events.put)
    thread = threading.Thread(target=run.run, name=f"eval-{eval_dir.name}", daemon=True)
    thread.start()
    try:
        while (event := events.get()) is not None:
            yield event
    finally:
        run.abandoned.set()
        thread.join()


class _EvalRun:
    """One attempt at an eval: state shared by the coroutines of the event loop."""

    spec: EvalSpec
    judge: Judge
    known: dict[tuple[int, str], Generation]
    previews: dict[int, str]

    def __init__(
        self,
        eval_dir: Path,
        cancel: threading.Event,
        candidate: Generator | None,
        emit: Callable[[EvalEvent | None], None],
    ) -> None:
        self.eval_dir = eval_dir
        self.cancel = cancel
        self.abandoned = threading.Event()
        self.given_candidate = candidate
        self.emit = emit
        self.results: list[ItemResult] = []
        self.total = 0

    # --- the thread -----------------------------------------------------------------------

    def run(self) -> None:
        """Thread target: run the loop; whatever happens, end with Finished and a sentinel."""
        try:
            asyncio.run(self.main())
        except Exception as exc:  # a bug must still end the log properly
            self.emit(Finished("failed", f"the eval crashed: {exc!r}"[:300], self.done, self.total))
        finally:
            self.emit(None)

    @property
    def done(self) -> int:
        return sum(1 for r in latest_results(self.results).values() if not r.error)

    def stopping(self) -> bool:
        return self.cancel.is_set() or self.abandoned.is_set()

    # --- the loop -------------------------------------------------------------------------

    async def main(self) -> None:
        try:
            spec = load_spec(self.eval_dir)
            items = read_items(self.eval_dir)
        except EvalError as exc:
            self.emit(Finished("failed", str(exc), 0, 0))
            return
        self.spec, self.total = spec, len(items)
        self.previews = {item.index: item.preview for item in items}
        self.results = read_result_lines(self.eval_dir)
        finished = {i for i, r in latest_results(self.results).items() if not r.error}
        todo = [item for item in items if item.index not in finished]
        self.emit(
            Started(
                self.eval_dir.name,
                self.total,
                len(todo),
                spec.model,
                spec.baseline,
                spec.judge_model,
                spec.batch,
            )
        )
        self.emit(self.progress())
        self.emit(await self.attempt(todo) if todo else self.finished())

    async def attempt(self, todo: list[EvalItem]) -> Finished:
        """Work through `todo`, stopping on cancel; the Finished event that ends it."""
        cache = ResultCache(self.eval_dir.parent / CACHE_FILE)
        executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="candidate")
        candidate: Generator | None = None
        baseline: Baseline | None = None
        client: AsyncAnthropic | None = None
        try:
            client = make_client(self.spec)
            self.judge = Judge(client, self.spec, cache, warn=self.warn)
            judge_client = client
            baseline = make_baseline(self.spec, cache, lambda: judge_client)
            self.emit(Phase(f"loading {Path(self.spec.model).name}"))
            loaded = self.given_candidate
            if loaded is None:
                loop = asyncio.get_running_loop()
                loaded = candidate = await loop.run_in_executor(executor, self.load_candidate)
            await self.until_cancelled(self.work(todo, loaded, baseline, executor))
        except (EvalError, JudgeFatal, ValueError) as exc:
            return Finished("failed", str(exc), self.done, self.total)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            if candidate is not None:
                candidate.close()
            if baseline is not None:
                await baseline.aclose()
            if client is not None:
                await client.close()
            cache.close()
        if self.stopping():
            reason = f"stopped with {self.done} of {self.total} done; resume to finish"
            return Finished("stopped", reason, self.done, self.total)
        return self.finished()

    def warn(self, message: str) -> None:
        self.emit(EvalWarning(message))

    def load_candidate(self) -> Generator:
        """The fine-tuned GGUF, loaded as the spec says (runs in the candidate thread)."""
        spec = self.spec
        return LlamaCppGenerator(
            Path(spec.model),
            n_ctx=spec.n_ctx,
            n_gpu_layers=spec.n_gpu_layers,
            max_tokens=spec.max_tokens,
            temperature=spec.temperature,
            repeat_penalty=spec.repeat_penalty,
            seed=spec.seed,
            threads=spec.threads,
        )

    async def until_cancelled(self, work: Any) -> None:
        """Run `work`, cancelling it as soon as the cancel flag is set."""
        task = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.wait({task}, timeout=CANCEL_POLL_S)
            if self.stopping() and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return
        try:
            task.result()
        except ExceptionGroup as group:  # the first failure of a task group: why it stopped
            raise group.exceptions[0] from None

    async def work(
        self,
        todo: list[EvalItem],
        candidate: Generator,
        baseline: Baseline,
        executor: concurrent.futures.Executor,
    ) -> None:
        """Every item: answers, then judgments (pipelined, or in one batch)."""
        self.emit(Phase(f"generating and judging {len(todo)} items"))
        self.known = read_generations(self.eval_dir)
        answers = _Answers(self, candidate, baseline, executor)
        if not self.spec.batch:
            await _all(self.pipelined(item, answers) for item in todo)
            return
        pairs = await _all(answers.both(item) for item in todo)
        await self.batched([(item, c, b) for item, (c, b) in zip(todo, pairs, strict=True)])

    async def pipelined(self, item: EvalItem, answers: _Answers) -> None:
        """One item from its answers to its recorded result."""
        cand, base = await answers.both(item)
        if (failed := self.unjudgeable(item, cand, base)) is not None:
            self.record(failed)
            return
        text = item.input_text
        cb, bc = await asyncio.gather(
            self.judge.judge(text, cand.text, base.text),
            self.judge.judge(text, base.text, cand.text),
        )
        self.record(judged(item, cand, base, cb, bc))

    def unjudgeable(self, item: EvalItem, cand: Generation, base: Generation) -> ItemResult | None:
        """The result of an item that needs no judge: a failed answer, or identical ones."""
        if cand.error or base.error:
            error = "; ".join(filter(None, (cand.error, base.error)))
            return ItemResult(item.index, item.example_id, cand, base, error=error)
        if cand.text.strip() == base.text.strip():
            return ItemResult(
                item.index, item.example_id, cand, base, outcome="tie", identical=True
            )
        return None

    def record(self, result: ItemResult) -> None:
        """Write a finished item and report it."""
        append_result(self.eval_dir, result)
        self.results.append(result)
        self.emit(
            ItemJudged(
                index=result.index,
                example_id=result.example_id,
                outcome=result.outcome,
                disagreed=result.disagreed,
                identical=result.identical,
                error=result.error,
                preview=self.previews.get(result.index, ""),
            )
        )
        self.emit(self.progress())

    def progress(self) -> Progress:
        """Running totals over every item finished so far (earlier attempts included)."""
        latest = latest_results(self.results).values()
        counts = outcome_tally(latest)
        paid = judge_totals(self.results, self.spec.judge_model, self.spec.prices)
        return Progress(
            done=self.done,
            total=self.total,
            wins=counts.wins,
            ties=counts.ties,
            losses=counts.losses,
            errors=sum(1 for r in latest if r.error),
            judge_calls=paid.calls,
            cached_judgments=paid.cached,
            judge_input_tokens=paid.input_tokens + paid.cache_write_tokens + paid.cache_read_tokens,
            judge_output_tokens=paid.output_tokens,
            judge_cost_usd=paid.cost_usd,
        )

    def finished(self) -> Finished:
        """The end of a complete attempt (items with errors are counted, and redone on resume)."""
        from workbench.evaluate.report import write_summary

        summary = write_summary(self.eval_dir)
        reason = f"W/T/L {summary.wins}/{summary.ties}/{summary.losses}"
        if summary.errors:
            reason += f", {summary.errors} item(s) failed: see the report; resume to retry them"
        return Finished("finished", reason, self.done, self.total)

    # --- batch mode -----------------------------------------------------------------------

    async def batched(self, pairs: list[tuple[EvalItem, Generation, Generation]]) -> None:
        """Judge every pair not yet judged through one Message Batch, then record them all."""
        verdicts: dict[str, Verdict] = {}
        requests: dict[str, dict[str, Any]] = {}
        ready = []
        for item, cand, base in pairs:
            if (failed := self.unjudgeable(item, cand, base)) is not None:
                self.record(failed)
                continue
            ready.append((item, cand, base))
            for order, (a, b) in (("cb", (cand, base)), ("bc", (base, cand))):
                cid = f"item-{item.index}-{order}"
                hit = self.judge.cached(item.input_text, a.text, b.text)
                if hit is not None:
                    verdicts[cid] = hit
                else:
                    requests[cid] = self.judge.params(item.input_text, a.text, b.text)
        if requests:
            self.emit(Phase(f"judging {len(requests)} requests as a Message Batch"))
            fresh = await self.follow_batch(requests)
            if fresh is None:
                return
            verdicts.update(fresh)
        for item, cand, base in ready:
            missing = Verdict(error="judge (batch): no result for this request")
            cb = verdicts.get(f"item-{item.index}-cb", missing)
            bc = verdicts.get(f"item-{item.index}-bc", missing)
            self.judge.remember(item.input_text, cand.text, base.text, cb)
            self.judge.remember(item.input_text, base.text, cand.text, bc)
            self.record(judged(item, cand, base, cb, bc))
        (self.eval_dir / BATCH_FILE).unlink(missing_ok=True)

    async def follow_batch(self, requests: dict[str, dict[str, Any]]) -> dict[str, Verdict] | None:
        """Submit the batch (or follow the one a stopped attempt submitted) until it ends."""
        saved = _read_batch_id(self.eval_dir)

        def created(batch_id: str) -> None:
            (self.eval_dir / BATCH_FILE).write_text(json.dumps({"batch_id": batch_id}) + "\n")

        def update(batch_id: str, status: str, counts: dict[str, int]) -> None:
            self.emit(BatchUpdate(batch_id, status, **counts))

        return await run_batch(self.judge, requests, saved, created, update, self.stopping)


class _Answers:
    """Both answers to an item: from `generations.jsonl` when a former attempt made them."""

    def __init__(
        self,
        run: _EvalRun,
        candidate: Generator,
        baseline: Baseline,
        executor: concurrent.futures.Executor,
    ) -> None:
        self.run = run
        self.candidate = candidate
        self.baseline = baseline
        self.executor = executor

    async def both(self, item: EvalItem) -> tuple[Generation, Generation]:
        return await asyncio.gather(self.from_candidate(item), self.from_baseline(item))

    async def from_candidate(self, item: EvalItem) -> Generation:
        if (known := self.run.known.get((item.index, "candidate"))) is not None:
            return known
        loop = asyncio.get_running_loop()
        generation = await loop.run_in_executor(
            self.executor, self.candidate.generate, item.messages
        )
        self.keep(item, "candidate", generation)
        return generation

    async def from_baseline(self, item: EvalItem) -> Generation:
        if (known := self.run.known.get((item.index, "baseline"))) is not None:
            return known
        generation = await self.baseline.generate(item)
        if self.baseline.kind != "stored":
            self.keep(item, "baseline", generation)
        return generation

    def keep(self, item: EvalItem, side: str, generation: Generation) -> None:
        if generation.ok:
            append_generation(self.run.eval_dir, item.index, side, generation)  # type: ignore[arg-type]


async def _all(coroutines: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines together; the first failure cancels the others (a refused key must not
    keep paying for the rest)."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(coroutine) for coroutine in coroutines]
    return [task.result() for task in tasks]


def judged(
    item: EvalItem, cand: Generation, base: Generation, cb: Verdict, bc: Verdict
) -> ItemResult:
    """The result of a judged pair: the outcome when both orders gave a verdict."""
    if cb.error or bc.error:
        error = "; ".join(dict.fromkeys(filter(None, (cb.error, bc.error))))
        return ItemResult(item.index, item.example_id, cand, base, cb, bc, error=error)
    outcome, disagreed = combine(side_of(cb.winner, "cb"), side_of(bc.winner, "bc"))
    return ItemResult(item.index, item.example_id, cand, base, cb, bc, outcome, disagreed)


def _read_batch_id(eval_dir: Path) -> str:
    """The id of a batch a stopped attempt submitted ("" if none)."""
    try:
        return str(json.loads((eval_dir / BATCH_FILE).read_text())["batch_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
