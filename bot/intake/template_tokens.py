"""Drain, taught that masked values are values and that differing words are different events.

Drain3 treats every token alike: it counts how many positions of a message equal its
cluster's template and joins the cluster above a similarity threshold, turning the
positions that differ into `<*>`. After good masking that rule errs one way: what still
differs between two messages is mostly words, and a differing word is more often a
different event (`Task succeeded` / `Task failed`, `VM Started` / `VM Stopped`) than a
value. So `MaskAwareDrain` changes three things, keeping Drain's tree and clusters:

- two different unmasked tokens at one position never join (the similarity is zero);
  words that really are values are found later by `TemplateGroups`, from how many
  different words one position takes;
- tokens whose placeholders differ only in kind (`rhost=<IP>`, `rhost=<HOST>`) are equal,
  and merge to `rhost=<VAR>`;
- a token with a placeholder is routed like a number in the prefix tree, not as a key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from drain3.drain import Drain

WILDCARD = "<*>"
# A typed placeholder from masking (`<NUM>`), or Drain's wildcard.
PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*>|<\*>")
TYPED_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*>")
ANY_KIND = "<VAR>"
# A token that is nothing but placeholders and punctuation: `(<SIZE>)`, `<IP>,<IP>`, `#<NUM>#`.
_VARIABLE_TOKEN = re.compile(r"[^A-Za-z0-9<>]*(?:(?:<[A-Z][A-Z_]*>|<\*>)[^A-Za-z0-9<>]*)+")


def has_placeholder(token: str) -> bool:
    return "<" in token and PLACEHOLDER.search(token) is not None


def is_variable(token: str) -> bool:
    """True for tokens made only of values: they carry no part of the event's wording."""
    return "<" in token and _VARIABLE_TOKEN.fullmatch(token) is not None


def shape(token: str) -> str:
    """The token with each typed placeholder made kind-less: `uid=<NUM>` → `uid=<VAR>`."""
    return TYPED_PLACEHOLDER.sub(ANY_KIND, token) if "<" in token else token


def _same_shape(a: str, b: str) -> bool:
    return "<" in a and "<" in b and shape(a) == shape(b)


class MaskAwareDrain(Drain):
    """Drain3's `Drain` with mask-aware token comparison (see the module docstring)."""

    @staticmethod
    def has_numbers(s: str) -> bool:
        # Drain sends tokens with digits down its wildcard branch; a placeholder is a value too.
        return has_placeholder(s) or any(char.isdigit() for char in s)

    def get_seq_distance(
        self, seq1: Sequence[str], seq2: Sequence[str], include_params: bool
    ) -> tuple[float, int]:
        """Similarity of template `seq1` and message `seq2`, and the template's wildcards."""
        if not seq1:
            return 1.0, 0
        similar = params = 0
        # Hot loop (every candidate cluster of every message): plain `in` tests first.
        for template_token, token in zip(seq1, seq2):
            if template_token == token:
                similar += 1
            elif template_token == WILDCARD:
                params += 1
                similar += include_params
            elif "<" in template_token and "<" in token:
                similar += shape(template_token) == shape(token)
            elif not has_placeholder(template_token) and not has_placeholder(token):
                return 0.0, params  # two different words: a different event
        return similar / len(seq1), params

    def create_template(self, seq1: Sequence[str], seq2: Sequence[str]) -> list[str]:
        """Template `seq2` generalised to also cover message `seq1`."""
        merged = list(seq2)
        for i, (token, template_token) in enumerate(zip(seq1, seq2)):
            if token == template_token:
                continue
            merged[i] = shape(token) if _same_shape(token, template_token) else WILDCARD
        return merged
