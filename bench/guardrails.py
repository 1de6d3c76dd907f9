"""The PII guardrail's cost per request: a 2 KB prompt masked with every built-in entity (and
a custom pattern), clean and with personal data in it, and the restore of an answer. Target:
at most 0.2 ms per request. Prints a line per case (median of rounds) and, when
presidio-analyzer is installed, the same prompt through its pattern recognizers, as the
reason this gateway does not use them.

Run it with the machine quiet:  flock -x /tmp/cpu.lock python3 bench/guardrails.py
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import orjson

from gateway.guardrails.config import GuardrailConfig
from gateway.guardrails.pii import Guardrails, Vault
from gateway.guardrails.restore import restore_body

FILLER = ("The quarterly report covers revenue, churn and the hiring plan for the platform "
          "team; numbers are preliminary and may change before the board meeting. ")
PII = ("Contact jane.doe@example.com or +1 415 555 0132, card 4111 1111 1111 1111, IBAN "
       "DE89 3704 0044 0532 0130 00, host 10.1.2.3, SSN 123-45-6789, RRN 900101-1234567, "
       "key sk-proj-abcdefghijklmnopqrstuv1234, employee E-123456. ")


def prompt(with_pii: bool) -> str:
    text = PII if with_pii else ""
    while len(text) < 2048:
        text += FILLER
    return text[:2048]


def per_call_ms(work: Callable[[], object], rounds: int = 7, calls: int = 300) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        timings.append((time.perf_counter() - started) / calls * 1000)
    return statistics.median(timings)


def main() -> None:
    guard = Guardrails([GuardrailConfig.model_validate(
        {"pii": {"action": "mask", "restore": True, "patterns": {"EMPLOYEE_ID": "E-[0-9]{6}"}}})])
    results: dict[str, float] = {}
    for label, with_pii in (("clean 2 KB prompt", False), ("2 KB prompt with 9 PII values", True)):
        messages = [{"role": "system", "content": "You are helpful."},
                    {"role": "user", "content": prompt(with_pii)}]
        results[f"mask, {label}"] = per_call_ms(lambda m=messages: guard.apply(m, Vault()))
    vault = Vault()
    masked = guard.apply([{"role": "user", "content": prompt(True)}], vault)
    body = orjson.dumps({"choices": [{"message": {"content": masked[0]["content"]}}]})
    results["restore a 2 KB answer"] = per_call_ms(lambda: restore_body(body, vault.restore))
    for name, ms in results.items():
        print(f"{name:40s} {ms:.3f} ms/request")
    try:
        from presidio_analyzer.predefined_recognizers import (  # type: ignore[import-not-found]
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            PhoneRecognizer,
            UsSsnRecognizer,
        )
    except ImportError:
        print("presidio-analyzer not installed: no comparison")
    else:
        recognizers = [EmailRecognizer(), CreditCardRecognizer(), IbanRecognizer(),
                       IpRecognizer(), UsSsnRecognizer(), PhoneRecognizer()]
        text = prompt(True)

        def presidio() -> None:
            for recognizer in recognizers:
                recognizer.analyze(text, entities=recognizer.supported_entities,
                                   nlp_artifacts=None)

        presidio()  # (its first call reaches for the network: tldextract)
        ms = per_call_ms(presidio, rounds=3, calls=20)
        ours = results["mask, 2 KB prompt with 9 PII values"]
        print(f"{'presidio pattern recognizers, same text':40s} {ms:.3f} ms/request "
              f"({ms / ours:.0f}x)")
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
