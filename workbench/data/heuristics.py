"""Cheap checks that catch what a strict schema cannot: an answer cut off mid-sentence, an answer
in another language than its prompt. Both are warnings: they can be wrong, and say so."""

from __future__ import annotations

import functools
import re
from collections import Counter

# Closing quotes and brackets, and the CJK full stop, exclamation and question marks.
_SENTENCE_END = set(".!?…\"'\u201d\u2019»)]}>`*:;\u3002\uff01\uff1f\u300d\u300f")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s")
_TAIL_CHARS = 2000
"""Characters of an answer's end the cut-off check reads."""
_SAMPLE_CHARS = 600
"""Characters of a text the language check reads (its start); enough to tell, cheap to scan."""

_MARKERS = {
    "English": "the and is of to with that for this are you your it be",
    "German": "und der die das ist nicht mit sich ein eine den dem zu auf für von auch sind",
    "French": "les est et une des dans pour qui sur avec pas au ce cette",
    "Spanish": "el los las una por del está pero más muy también hay",
    "Italian": "il che della gli sono nel alla questo per di anche molto",
    "Portuguese": "não uma os com do da são ao em muito você também",
    "Dutch": "het een van niet zijn ook wordt naar dat voor met bij maar",
}
"""Frequent short words, each distinctive of one language."""
_LANGUAGE_OF = {word: language for language, words in _MARKERS.items() for word in words.split()}


def ends_mid_sentence(text: str) -> str | None:
    """The last words of an answer that looks cut off, else None.

    Only prose counts (read from the last _TAIL_CHARS characters): at least 40 words, a last
    paragraph of at least 8 words that is not a list
    item, ending in a letter or a comma rather than a sentence end.
    """
    stripped = text[-_TAIL_CHARS:].rstrip()
    if not stripped or stripped[-1] in _SENTENCE_END or len(stripped.split()) < 40:
        return None
    last = stripped.rsplit("\n", 1)[-1]
    if _LIST_ITEM.match(last) or len(last.split()) < 8 or last.lstrip().startswith("|"):
        return None
    if not (stripped[-1].isalpha() or stripped[-1] in ",-\u2013("):
        return None
    return " ".join(last.split()[-5:])


def guess_language(text: str) -> str | None:
    """The language of a text from its most common short words, or None when unsure.

    Reads the first _SAMPLE_CHARS characters; needs at least 20 words of which at least 8% are
    frequent short words of one language, twice as many as of any other. So it names only English,
    German, French, Spanish, Italian, Portuguese or Dutch, and keeps quiet on code, lists of
    keywords and short texts.
    """
    words = text[:_SAMPLE_CHARS].lower().split()
    if len(words) < 20:
        return None
    hits = Counter(map(_LANGUAGE_OF.get, words))
    hits.pop(None, None)
    if not hits:
        return None
    (best, count), *rest = hits.most_common(2)
    if count < 0.08 * len(words) or (rest and count < 2 * rest[0][1]):
        return None
    return str(best)


@functools.lru_cache(maxsize=64)
def guess_language_cached(text: str) -> str | None:
    """`guess_language` for texts that repeat (a shared system prompt)."""
    return guess_language(text)
