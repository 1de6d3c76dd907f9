"""Finding personal data in text: one compiled regex per entity finds candidates, and the
checksummed formats are confirmed by python-stdnum (Luhn for card numbers, ISO 13616 for
IBANs, the SSA's rules for US SSNs, the birth date of Korean RRNs); IP addresses by
``ipaddress``.

Why not presidio-analyzer: its pattern recognizers do run without a language model, but the
package pulls in spaCy (and tldextract, which fetches the public-suffix list over the network
at first use), and its ``analyze`` costs about 2 ms for a 2 KB prompt, ten times this
gateway's budget (``bench/guardrails.py``). The candidate patterns here follow presidio's
recognizers; the checks that matter (checksums) come from python-stdnum, a kept library.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stdnum import iban, luhn
from stdnum.exceptions import ValidationError
from stdnum.kr import rrn
from stdnum.us import ssn


def _luhn(value: str) -> bool:
    digits = re.sub(r"[ -]", "", value)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _rrn(value: str) -> bool:
    # (RRNs issued since October 2020 carry no check digit: the birth date is what is checked)
    try:
        rrn.get_birth_date(value.replace("-", ""))
    except (ValidationError, ValueError):
        return False
    return True


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_API_KEY = "|".join((
    r"sk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"AKIA[0-9A-Z]{16}",  # AWS access key id
    r"AIza[0-9A-Za-z_-]{35}",  # Google API key
    r"gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}",  # GitHub
    r"glpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"xox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----",
))
# A secret written as an assignment (password=..., api_key: "...") : only the value is masked.
_ASSIGNED = (r"(?i:\b(?:api[_-]?key|secret|token|passw(?:or)?d|pwd)\b[\"']?\s*[:=]\s*[\"']?)"
             r"(?P<v>[^\s\"',;]{6,})")
_SECRET_WORDS = ("key", "secret", "token", "passw", "pwd")


@dataclass(frozen=True, slots=True)
class Spec:
    """One recognizer: a candidate regex, and what makes it cheap to skip or to aim.

    ``needs``: substrings one of which every match contains (of the lower-cased text when
    ``lower``); ``near``: an anchor ("digits", "@") around which the regex is run, within
    ``(before, after)`` characters, instead of over the whole text; ``confirm``: a check of
    each candidate (a checksum)."""

    pattern: str
    needs: tuple[str, ...] = ()
    lower: bool = False
    near: str | None = None
    confirm: Callable[[str], bool] | None = None


_DIGITS = "digits"
BUILTIN: dict[str, tuple[Spec, ...]] = {
    "EMAIL": (Spec(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
                   near="@"),),
    "PHONE": (Spec(r"(?<![\w+])(?<!\d[ .])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?|\d{1,4}[ .-])"
                   r"\d{3,4}[ .-]\d{4}(?![\w-]|[ .]\d)", near=_DIGITS),),
    "CREDIT_CARD": (Spec(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?![\d-])", near=_DIGITS,
                         confirm=_luhn),),
    "IBAN": (Spec(r"[A-Z](?<!\w[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}\b", near=_DIGITS,
                  confirm=iban.is_valid),),
    "IP_ADDRESS": (Spec(rf"\d(?<![\d.]\d)\d{{0,2}}(?:\.{_OCTET}){{3}}(?![\d.])", needs=(".",),
                        near=_DIGITS, confirm=_ip),
                   Spec(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])",
                        needs=(":",), confirm=_ip)),
    "API_KEY": (Spec(_API_KEY),
                Spec(_ASSIGNED, needs=_SECRET_WORDS, lower=True, near="=:")),
    "KR_RRN": (Spec(r"\d(?<![\d-]\d)\d{5}-?[1-8]\d{6}(?![\d-])", near=_DIGITS, confirm=_rrn),),
    "US_SSN": (Spec(r"\d(?<![\d-]\d)\d\d-\d{2}-\d{4}(?![\d-])", needs=("-",), near=_DIGITS,
                    confirm=ssn.is_valid),),
}
# The anchors: where a "near" recognizer may match, and how far around them.
_ANCHORS: dict[str, tuple[re.Pattern[str], int, int]] = {
    _DIGITS: (re.compile(r"\d[\d .()+-]*"), 6, 40),
    "@": (re.compile("@"), 64, 256),
    "=:": (re.compile("[=:]"), 40, 200),
}


def _windows(text: str, anchor: str) -> list[tuple[int, int]]:
    """The merged stretches of ``text`` around each match of ``anchor``."""
    pattern, before, after = _ANCHORS[anchor]
    windows: list[tuple[int, int]] = []
    for match in pattern.finditer(text):
        start, end = max(0, match.start() - before), min(len(text), match.end() + after)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    entity: str


@dataclass(frozen=True, slots=True)
class _Recognizer:
    entity: str
    pattern: re.Pattern[str]
    spec: Spec

    def find(self, text: str, start: int, end: int) -> Iterable[Finding]:
        confirm = self.spec.confirm
        for match in self.pattern.finditer(text, start, end):
            a, b = match.span("v") if match.lastgroup == "v" else match.span()
            if confirm is None or confirm(text[a:b]):
                yield Finding(a, b, self.entity)


class Detector:
    """The recognizers of one ``pii`` guardrail: its built-in entities and custom patterns."""

    def __init__(self, entities: Iterable[str], patterns: dict[str, str]) -> None:
        self._recognizers: list[_Recognizer] = []
        for entity in entities:
            for spec in BUILTIN[entity]:
                self._recognizers.append(_Recognizer(entity, re.compile(spec.pattern), spec))
        for entity, pattern in patterns.items():
            self._recognizers.append(_Recognizer(entity, re.compile(pattern), Spec(pattern)))

    def find(self, text: str) -> list[Finding]:
        """Every finding, in order, none overlapping (an earlier, then a longer one wins)."""
        found: list[Finding] = []
        lowered: str | None = None
        windows: dict[str, list[tuple[int, int]]] = {}
        for recognizer in self._recognizers:
            spec = recognizer.spec
            if spec.needs:
                if spec.lower and lowered is None:
                    lowered = text.lower()
                haystack = lowered if spec.lower and lowered is not None else text
                if not any(needed in haystack for needed in spec.needs):
                    continue
            if spec.near is None:
                found.extend(recognizer.find(text, 0, len(text)))
                continue
            if spec.near not in windows:
                windows[spec.near] = _windows(text, spec.near)
            for start, end in windows[spec.near]:
                found.extend(recognizer.find(text, start, end))
        if len(found) < 2:
            return found
        found.sort(key=lambda f: (f.start, -f.end))
        kept = [found[0]]
        for finding in found[1:]:
            if finding.start >= kept[-1].end:
                kept.append(finding)
        return kept
