"""The job functions (one per tool) and what they share: inputs stored once under a key (the
job carries the key, never the bytes), deleted by the engine once the job has ended
(``release``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from gateway.access.quotas import Ticket
from gateway.access.spend import Meter
from gateway.access.usage import UsageLog
from gateway.jobs import extract
from gateway.jobs.charges import KeyCharges, job_key
from gateway.jobs.engine import JobFailed, JobFunction, Report, count_tokens
from gateway.jobs.inputs import Inputs
from gateway.prompts.context import context_window
from gateway.routing.router import Router
from gateway.tokens import TokenEstimator
from providers.base import OCRProvider, TokenCounter, Transcriber
from wire.audio import AudioAnswer, parse_transcription
from wire.errors import InvalidRequest
from wire.openai import ChatRequest, Usage
from wire.tools import OCRRequest, ToolFile
from wire.uploads import UploadedFile

MIN_CHUNK_TOKENS = 100  # (a tiny context window still gets pieces of some length)

@dataclass(frozen=True, slots=True)
class Tools:
    """What the job functions call: the router (retries, fallbacks, breakers), the stored
    inputs, the usage log."""

    router: Router
    inputs: Inputs
    usage: UsageLog
    chunk_tokens: int = 6000
    tokens: TokenEstimator = field(default_factory=TokenEstimator)
    charges: KeyCharges | None = None  # the posting key's tpm, budget and spend

    def functions(self) -> Mapping[str, JobFunction]:
        from gateway.jobs.summarize import Summarizer

        functions: dict[str, JobFunction] = {"transcribe": self.transcribe,
                                             "extract": self.extract,
                                             "summarize": Summarizer(self).run}
        return functions

    async def release(self, args: dict[str, Any]) -> None:
        """Delete an ended job's stored input (called by the engine once the job's final state
        is recorded, never by a step: a job run again after a crash reads it again)."""
        if args.get("input"):
            await self.inputs.delete(args["input"])

    async def _input(self, key: str) -> bytes:
        data = await self.inputs.get(key)
        if data is None:
            raise InvalidRequest("The job's uploaded input has expired or was deleted.",
                                 param="file")
        return data

    async def transcribe(self, args: dict[str, Any], report: Report) -> dict[str, Any]:
        return await self.transcript(args, report, 1.0)

    async def transcript(self, args: dict[str, Any], outer: Report, share: float
                         ) -> dict[str, Any]:
        """A long recording as a job: the ``/v1/audio/transcriptions`` form, answered as
        ``verbose_json`` (progress: ``share`` of the job's). Safe to run twice (it only reads
        its input)."""

        async def report(progress: float, stage: str) -> None:
            await outer(progress * share, stage)

        await report(0.0, "reading")
        data = await self._input(args["input"])
        fields = [(k, v) for k, v in args["fields"]
                  if k not in ("response_format", "stream")] + [("response_format",
                                                                  "verbose_json")]
        decoded = [0.0]  # the share of the audio decoded (local whisper tells it)
        request = replace(parse_transcription("transcribe", fields, UploadedFile(
            "file", args["filename"], args["content_type"], data)),
            progress=lambda share: decoded.__setitem__(0, share))
        route = self.router.resolve(request.model)
        await report(0.05, "transcribing")

        async def call(provider: Transcriber, model: str) -> AudioAnswer:
            answer = await provider.transcribe(request, model)
            assert isinstance(answer, AudioAnswer)  # stream is never set here
            return answer

        watcher = asyncio.create_task(_follow(decoded, report))
        try:
            answer = await self.router.invoke(
                route, Transcriber,  # type: ignore[type-abstract]  # a runtime-checkable Protocol
                call, what="audio transcription")
        finally:
            watcher.cancel()
        self.usage.record(args.get("owner"), args.get("user"), route.model, 0, 0)
        result: dict[str, Any] = orjson.loads(answer.body)
        return result

    async def extract(self, args: dict[str, Any], report: Report) -> dict[str, Any]:
        """A document read (text layer or OCR), asked ``prompt`` chunk by chunk; with a schema
        the answer is JSON that validates (asked once more with the errors, else failed).
        Safe to run twice (it only reads its input)."""
        await report(0.0, "reading")
        text = await self._document(args)
        await report(0.2, "reading")
        parts = await self.chunks(text, [args["model"]])
        schema: dict[str, Any] | None = args.get("schema")
        answers: list[str] = []
        data: list[Any] = []
        asked = schema if schema is None or len(parts) == 1 else extract.partial(schema)
        for index, part in enumerate(parts, 1):
            answer, parsed = await self._ask(args, extract.messages(
                args["prompt"], part, index, len(parts), asked), asked)
            answers.append(answer)
            data.append(parsed)
            await report(0.2 + 0.75 * index / len(parts), f"answered {index}/{len(parts)}")
        if schema is not None:
            merged = extract.merge(data)
            _, errors = extract.check(orjson.dumps(merged).decode(), schema)
            if errors:
                raise JobFailed("The answers of the document's parts, merged, do not "
                                "validate against the schema: " + "; ".join(errors))
            return {"model": args["model"], "text": orjson.dumps(merged).decode(),
                    "data": merged}
        if len(answers) > 1:
            combined = "\n\n".join(f"Part {i}: {a}" for i, a in enumerate(answers, 1))
            question = (f"{args['prompt']}\n\nThe document was read in {len(answers)} "
                        f"parts; these are the answers for each part. Combine them into one "
                        f"answer.\n\n{combined}")
            answer, _ = await self._ask(args, [{"role": "user", "content": question}], None)
            return {"model": args["model"], "text": answer}
        return {"model": args["model"], "text": answers[0]}

    async def _document(self, args: dict[str, Any]) -> str:
        data = await self._input(args["input"])
        if extract.is_text(args["filename"], args["content_type"]):
            return data.decode("utf-8", errors="replace")
        body = OCRRequest(ToolFile(data, args["filename"], args["content_type"]))
        result = await self.router.invoke(
            self.router.resolve(args["ocr_model"]),
            OCRProvider,  # type: ignore[type-abstract]  # a runtime-checkable Protocol
            lambda provider, model: provider.ocr(body, model), what="OCR")
        return result.text

    async def chunks(self, text: str, models: list[str]) -> list[str]:
        """A document in pieces that fit every one of the models: at most ``chunk_tokens``,
        and at most half of each one's context window (the rest: the prompt, the schema, the
        answer), counted with a lone model's own tokenizer where it has one (a loaded local
        model), else tiktoken; in a thread (a long document is many counts)."""
        budget, count = self.chunk_tokens, None
        for model in models:
            route = self.router.resolve(model)
            deployment = route.deployments[0]
            window = context_window(deployment.config, deployment.upstream_model(route.model))
            if window is not None:
                budget = max(MIN_CHUNK_TOKENS, min(budget, window // 2))
            if len(models) == 1:
                count = _own_counter(deployment.provider, route.model)
        await self.tokens.ready()
        return await asyncio.to_thread(extract.chunks, text, budget,
                                       count or self.tokens.count_text)

    async def _ask(self, args: dict[str, Any], messages: list[dict[str, str]],
                   schema: dict[str, Any] | None) -> tuple[str, Any]:
        """One question to the model (and, with a schema, once more with the validation
        errors): the answer's text and, with a schema, its valid JSON."""
        answer = await self.chat(args, messages, schema)
        if schema is None:
            return answer, None
        data, errors = extract.check(answer, schema)
        if errors:
            answer = await self.chat(args, messages + extract.retry_message(answer, errors),
                                      schema)
            data, errors = extract.check(answer, schema)
        if errors:
            raise JobFailed("The model's answer did not validate against the schema after a "
                            "retry: " + "; ".join(errors))
        return answer, data

    async def chat(self, args: dict[str, Any], messages: list[dict[str, str]],
                   schema: dict[str, Any] | None = None, *, model: str | None = None) -> str:
        """One chat call through the router (``model``, else the job's), charged to the
        posting key (tpm, budget, spend) and recorded in its usage; the answer's text."""
        model = model or args["model"]
        raw: dict[str, Any] = {"model": model, "messages": messages}
        if schema is not None:
            raw["response_format"] = extract.response_format(schema)
        route = self.router.resolve(model)
        request = ChatRequest.parse(raw)
        charges, key = self.charges, job_key(args)
        ticket = Ticket()
        if charges is not None:
            ticket = await charges.admit(key, lambda: charges.quotas.chat_cost(
                request, route.deployments[0].provider))
        meter = Meter()
        try:
            result = await self.router.chat(route, request, meter)
        except BaseException:
            if charges is not None:
                await charges.settle(key, ticket, Usage(0, 0), 0.0)
            raise
        usage = result.usage
        cost = meter.cost(usage)
        if charges is not None:
            await charges.settle(key, ticket, usage, cost)
        self.usage.record(args.get("owner"), args.get("user"), route.model,
                          usage.prompt_tokens if usage else 0,
                          usage.completion_tokens if usage else 0, cost_usd=cost)
        if usage is not None:
            count_tokens(usage.prompt_tokens, usage.completion_tokens)
        content = orjson.loads(result.body)["choices"][0]["message"].get("content")
        return content if isinstance(content, str) else ""


async def _follow(decoded: list[float], report: Report, every_s: float = 0.25) -> None:
    """Report the share decoded (0.05 to 0.99 of the job) whenever it has moved."""
    last = 0.0
    while True:
        await asyncio.sleep(every_s)
        if decoded[0] > last:
            last = decoded[0]
            await report(0.05 + 0.94 * last, "transcribing")


def _own_counter(provider: object, model: str) -> Callable[[str], int] | None:
    """A text's tokens with the model's own tokenizer (its chat template's overhead for one
    message taken off), when the provider has one loaded now."""
    if not isinstance(provider, TokenCounter):
        return None

    def tokens(text: str) -> int | None:
        return provider.count_prompt_tokens(ChatRequest.parse(
            {"model": model, "messages": [{"role": "user", "content": text}]}))

    overhead = tokens("")
    if overhead is None:
        return None

    def count(text: str) -> int:
        return max(0, (tokens(text) or overhead) - overhead)
    return count
