"""Meeting minutes: each model summarizes the transcript in parallel (chunk by chunk when it
is longer than ``jobs.chunk_tokens`` or half a model's window, then the parts: Tools.chunks),
and the first model combines them.
With an audio file the transcript is made first (the transcribe job's work)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.jobs import extract
from gateway.jobs.engine import Report

if TYPE_CHECKING:
    from gateway.jobs.tools import Tools


def default_prompt() -> str:
    return (extract.CONFIG / "summarize_prompt.txt").read_text(encoding="utf-8").strip()


class Summarizer:
    def __init__(self, tools: Tools) -> None:
        self._tools = tools

    async def run(self, args: dict[str, Any], report: Report) -> dict[str, Any]:
        text: str = args.get("text") or ""
        start = 0.0
        if args.get("input"):  # an audio file: transcribed first (a third of the job)
            transcript = await self._tools.transcript(args, report, 0.3)
            text, start = str(transcript.get("text", "")), 0.3
        models: list[str] = args["models"]
        parts = await self._tools.chunks(text, models)
        steps = len(models) * (len(parts) + (len(parts) > 1)) + 1
        done = [0]

        async def step(stage: str) -> None:
            done[0] += 1
            await report(start + (1 - start) * min(done[0] / steps, 0.99), stage)

        summaries = await asyncio.gather(*(self._summary(args, m, parts, step)
                                           for m in models))
        listed = [{"model": m, "text": s} for m, s in zip(models, summaries, strict=True)]
        combined = summaries[0]
        if len(models) > 1:
            joined = "\n\n".join(f"Minutes {i}:\n{s}" for i, s in enumerate(summaries, 1))
            combined = await self._tools.chat(args, [{"role": "user", "content": (
                f"{args['prompt']}\n\nSeveral writers wrote minutes of the same meeting. "
                f"Combine them into one set of minutes, keeping every decision and action "
                f"item that any of them found.\n\n{joined}")}], model=models[0])
        await step("combined")
        return {"summaries": listed, "combined": {"model": models[0], "text": combined}}

    async def _summary(self, args: dict[str, Any], model: str, parts: list[str],
                       step: Callable[[str], Awaitable[None]]) -> str:
        answers = []
        for index, part in enumerate(parts, 1):
            where = f" (part {index} of {len(parts)})" if len(parts) > 1 else ""
            answers.append(await self._tools.chat(args, [{"role": "user", "content": (
                f"{args['prompt']}\n\nTranscript{where}:\n{part}")}], model=model))
            await step(f"{model}: part {index}/{len(parts)}")
        if len(answers) == 1:
            return answers[0]
        joined = "\n\n".join(f"Part {i}:\n{a}" for i, a in enumerate(answers, 1))
        answer = await self._tools.chat(args, [{"role": "user", "content": (
            f"{args['prompt']}\n\nThe transcript was summarized in {len(answers)} parts. "
            f"Write one set of minutes from them.\n\n{joined}")}], model=model)
        await step(f"{model}: parts combined")
        return answer
