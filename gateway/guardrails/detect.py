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

# entity -> its recognizers: (candidate regex, a character every match contains (a cheap
# pre-check) or None, confirmation or None)
Recognizer = tuple[str, str | None, Callable[[str], bool] | None]
BUILTIN: dict[str, tuple[Recognizer, ...]] = {
    "EMAIL": ((r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", "@",
               None),),
    "PHONE": ((r"(?<![\w+])(?<!\d[ .])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?|\d{1,4}[ .-])"
               r"\d{3,4}[ .-]\d{4}(?![\w-]|[ .]\d)", None, None),),
    "CREDIT_CARD": ((r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])", None, _luhn),),
    "IBAN": ((r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", None, iban.is_valid),),
    "IP_ADDRESS": ((rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])", ".", _ip),
                   (r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", ":", _ip)),
    "API_KEY": ((rf"(?:{_API_KEY})|{_ASSIGNED}", None, None),),
    "KR_RRN": ((r"(?<![\d-])\d{6}-?[1-8]\d{6}(?![\d-])", None, _rrn),),
    "US_SSN": ((r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", "-", ssn.is_valid),),
}


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    entity: str


@dataclass(frozen=True, slots=True)
class _Recognizer:
    entity: str
    pattern: re.Pattern[str]
    needs: str | None
    confirm: Callable[[str], bool] | None

    def find(self, text: str) -> Iterable[Finding]:
        if self.needs is not None and self.needs not in text:
            return
        for match in self.pattern.finditer(text):
            start, end = match.span("v") if match.lastgroup == "v" else match.span()
            if self.confirm is None or self.confirm(text[start:end]):
                yield Finding(start, end, self.entity)


_HAS_DIGIT = re.compile(r"\d")
_DIGIT_ENTITIES = frozenset({"PHONE", "CREDIT_CARD", "KR_RRN", "US_SSN"})


class Detector:
    """The recognizers of one ``pii`` guardrail: its built-in entities and custom patterns."""

    def __init__(self, entities: Iterable[str], patterns: dict[str, str]) -> None:
        self._recognizers: list[_Recognizer] = []
        for entity in entities:
            for pattern, needs, confirm in BUILTIN[entity]:
                self._recognizers.append(_Recognizer(entity, re.compile(pattern), needs,
                                                     confirm))
        for entity, pattern in patterns.items():
            self._recognizers.append(_Recognizer(entity, re.compile(pattern), None, None))

    def find(self, text: str) -> list[Finding]:
        """Every finding, in order, none overlapping (an earlier, then a longer one wins)."""
        digits = _HAS_DIGIT.search(text) is not None
        found: list[Finding] = []
        for recognizer in self._recognizers:
            if not digits and recognizer.entity in _DIGIT_ENTITIES:
                continue
            found.extend(recognizer.find(text))
        if len(found) < 2:
            return found
        found.sort(key=lambda f: (f.start, -f.end))
        kept = [found[0]]
        for finding in found[1:]:
            if finding.start >= kept[-1].end:
                kept.append(finding)
        return kept
