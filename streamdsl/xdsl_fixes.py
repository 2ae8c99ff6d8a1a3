"""A fix to xDSL 0.75 (the pinned version) applied on import.

Its lexer matches a string literal with `"(?:[^"...]+|\\...)*"`: a nested quantifier that
backtracks exponentially when the closing quote is missing, so a 70-byte IR file with a stray
`"` hangs `streamdsl-opt` (found by tests/fuzz). Matching one character per repetition accepts
exactly the same literals in linear time.
"""

from __future__ import annotations

import re

from xdsl.utils.mlir_lexer import MLIRLexer

_SLOW = r'"(?:[^"\\\n\v\f]+|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*"'
_LINEAR = r'"(?:[^"\\\n\v\f]|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*"'

if MLIRLexer._unescaped_characters_regex.pattern == _SLOW:
    MLIRLexer._unescaped_characters_regex = re.compile(_LINEAR)
