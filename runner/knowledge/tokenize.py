"""Code-aware tokens for the search index: identifiers kept whole and split at camelCase and
snake_case boundaries, so `getUserName`, `get_user_name` and "user name" find one another.

Documents and queries go through the same function; FTS5 then only splits on whitespace-like
separators (its unicode61 tokenizer with `_` as a token character), which these tokens never hold.
"""
import functools
import re
from collections import Counter

_WORD = re.compile(r"\w+")
# Pieces of an ASCII identifier: an acronym (HTTP in HTTPServer), a capitalised or lower word, digits.
_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
MIN_LENGTH = 2
MAX_LENGTH = 64

# Words so common in prose and comments that they only dilute a query (code keywords stay: BM25
# weighs them down by itself, and `class` or `return` can be what someone looks for).
STOPWORDS = frozenset(
    """a an and are as at be but by can could did do does for from had has have he her his how i if in
    into is it its me my no not of on or our out over she so such than that the their them then there
    these they this those to up us was we were what when where which who why will with would you your
    should please make sure also just some any all each""".split()
)


@functools.lru_cache(maxsize=1 << 18)
def word_tokens(word):
    """The index tokens of one `\\w+` word: itself lowercased, then its parts when it has several."""
    whole = word.strip("_").lower()
    tokens = []
    if MIN_LENGTH <= len(whole) <= MAX_LENGTH and whole not in STOPWORDS:
        tokens.append(whole)
    if len(whole) <= MAX_LENGTH:
        parts = _PART.findall(word) if word.isascii() else _unicode_parts(word)
        if len(parts) > 1:
            for part in parts:
                part = part.lower()
                if len(part) >= MIN_LENGTH and part not in STOPWORDS and part != whole:
                    tokens.append(part)
    return tuple(tokens)


def _unicode_parts(word):
    """`_PART` for identifiers with letters outside ASCII (rare enough to split by hand)."""
    parts, current = [], ""
    for i, char in enumerate(word):
        if char == "_":
            parts.append(current)
            current = ""
            continue
        prev = current[-1] if current else ""
        following = word[i + 1] if i + 1 < len(word) else ""
        boundary = prev and (
            (char.isdigit() != prev.isdigit())
            or (char.isupper() and prev.islower())
            or (char.isupper() and prev.isupper() and following.islower())
        )
        if boundary:
            parts.append(current)
            current = ""
        current += char
    parts.append(current)
    return [part for part in parts if part]


def token_counts(text):
    """{token: occurrences} of `text`."""
    counts = Counter()
    for word, n in Counter(_WORD.findall(text)).items():
        for token in word_tokens(word):
            counts[token] += n
    return counts


def document(text):
    """`text` as the whitespace-separated token string stored in the index.

    Token order is not kept (every query term is matched on its own, and BM25 needs only how often
    each occurs), which lets repeated words be expanded once.
    """
    return " ".join(" ".join((token,) * n) if n > 1 else token for token, n in token_counts(text).items())


def query_terms(text):
    """The distinct tokens of a query, in the order they first appear."""
    seen = {}
    for word in _WORD.findall(text):
        for token in word_tokens(word):
            seen.setdefault(token, None)
    return list(seen)
