"""Text analysis as the schema's ``memory_text`` analyzer does it (schema 006), so that the
index and a scan in the database split a text into the same terms.
"""

from __future__ import annotations

import re
from typing import Final

import tantivy

__all__ = ["STOPWORDS", "analysable", "text_analyzer", "text_schema"]

# English function words dropped before the text is split, as schema 006's analyzer does.
STOPWORDS: Final = [
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "for",
    "from",
    "had",
    "has",
    "have",
    "he",
    "her",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "my",
    "no",
    "not",
    "of",
    "on",
    "or",
    "our",
    "she",
    "so",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
]

# fn::memory_text (schema 006), the first step of the schema's analyzer: lowercase,
# punctuation to spaces, function words out (before the text is split, as there).
_PUNCTUATION: Final = re.compile(r"[^\w\s]")
_FUNCTION_WORDS: Final = re.compile(r"\b(?:" + "|".join(STOPWORDS) + r")\b")


def analysable(text: str) -> str:
    """``text`` as the schema's analyzer splits it (``fn::memory_text``)."""
    return _FUNCTION_WORDS.sub(" ", _PUNCTUATION.sub(" ", text.lower()))


def text_analyzer() -> tantivy.TextAnalyzer:
    """The rest of the schema's analyzer (``memory_text``: tokenizers blank, class, punct;
    filters lowercase, ascii, snowball) over :func:`analysable` text: runs of letters, of
    digits, and each underscore are tokens (``E1234`` is ``e`` and ``1234``)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"[^\W\d_]+|\d+|_"))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def text_schema() -> tantivy.Schema:
    """The text index's fields: the analysed content, and the slot it belongs to."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("content", stored=False, tokenizer_name="memory")
    builder.add_integer_field("slot", stored=False, indexed=True, fast=True)
    return builder.build()
