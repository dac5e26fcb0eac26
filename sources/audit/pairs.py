"""Which pairs of a topic the audit looks at: Kraken v2 symbols and the pipeline's patterns.

The audit reads the pairs from the topic itself, so a pattern needs no call to Kraken: `*/USD`
is every pair in the topic quoted in USD, `BTC/*` every pair of BTC, `all` (or `*/*`) every
pair. Named symbols are compared without regard to case; one that the topic does not hold in
the window is reported as absent.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PairSelection", "UsageError"]


class UsageError(ValueError):
    """A bad option or variable; the message names it. The command exits 2."""


@dataclass(frozen=True)
class PairSelection:
    """The parsed `pairs` option.

    :param symbols: pairs named explicitly (upper case), expected in the topic.
    :param bases: `BASE/*` patterns: any pair of these bases.
    :param quotes: `*/QUOTE` patterns: any pair quoted in these.
    :param everything: `all` or `*/*`.
    """

    symbols: frozenset[str] = frozenset()
    bases: frozenset[str] = frozenset()
    quotes: frozenset[str] = frozenset()
    everything: bool = False

    @classmethod
    def parse(cls, text: str, *, setting: str = "pairs") -> PairSelection:
        """`BTC/USD,*/EUR,ETH/*` or `all` -> a selection.

        :raises UsageError: naming `setting` for anything that is not a symbol or pattern.
        """
        symbols, bases, quotes = set(), set(), set()
        everything = False
        entries = [e.strip().upper() for e in text.split(",") if e.strip()]
        if not entries:
            raise UsageError(f"{setting}: no pair given")
        for entry in entries:
            base, slash, quote = entry.partition("/")
            if entry in ("ALL", "*/*"):
                everything = True
            elif not slash or "/" in quote or not _part(base) or not _part(quote):
                raise UsageError(
                    f"{setting}: {entry!r} is not a Kraken v2 symbol (BASE/QUOTE) or a pattern "
                    "(*/QUOTE, BASE/*, all)"
                )
            elif base == "*":
                quotes.add(quote)
            elif quote == "*":
                bases.add(base)
            else:
                symbols.add(entry)
        return cls(frozenset(symbols), frozenset(bases), frozenset(quotes), everything)

    def matches(self, pair: str) -> bool:
        """Whether the topic's `pair` is audited."""
        if self.everything:
            return True
        upper = pair.upper()
        if upper in self.symbols:
            return True
        base, _, quote = upper.partition("/")
        return base in self.bases or quote in self.quotes

    def absent(self, seen: set[str]) -> list[str]:
        """The named symbols none of the topic's pairs `seen` stands for, sorted."""
        found = {pair.upper() for pair in seen}
        return sorted(self.symbols - found)

    def __str__(self) -> str:
        if self.everything:
            return "all"
        parts = [*sorted(self.symbols), *(f"{b}/*" for b in sorted(self.bases))]
        return ",".join([*parts, *(f"*/{q}" for q in sorted(self.quotes))])


def _part(text: str) -> bool:
    """A side of a symbol: `*`, or letters and digits (Kraken's asset codes)."""
    return text == "*" or (text.isascii() and text.isalnum())
