"""Top-level symbols and imports of one source file, read from its text (never run or imported).

`parse(language, text)` → (symbols, imports):
- symbols: [{"name", "kind", "line"}] of top-level declarations, in file order. Python through `ast`
  (functions, classes, module-level names); the other languages through regular expressions on
  declarations that start a line (column 0: what the language's own formatters do at top level),
  after comments are blanked out so commented-out code never counts.
- imports: [{"module", "line", ...}] as written (`..models`, `./util`, `github.com/x/y`,
  `App\\Models\\User`, `crate::db::Pool`), with the extra fields `map.py` needs to resolve them.
"""
import ast
import re

LANGUAGES = ("python", "javascript", "typescript", "go", "java", "php", "ruby", "rust")


def parse(language, text):
    parser = _PARSERS.get(language)
    if parser is None:
        return [], []
    return parser(text)


def line_of(text, index):
    return text.count("\n", 0, index) + 1


def blank_comments(text, *, line=("//",), block=True, quotes="'\"", char_literals=False, raw_backtick=False):
    """`text` with comments replaced by spaces (newlines kept, so line numbers hold); strings are
    kept. `char_literals`: a quote opens a string only as 'x' / '\\n' (Rust lifetimes, Go runes)."""
    out, i, n = [], 0, len(text)
    while i < n:
        char = text[i]
        if char == "'" and char_literals:
            match = re.compile(r"'(?:\\.[^']*|[^'\\\n])'").match(text, i)
            if match:
                out.append(match[0])
                i = match.end()
            else:
                out.append(char)
                i += 1
            continue
        if char in quotes or (raw_backtick and char == "`"):
            end = _string_end(text, i, escapes=char != "`" or not raw_backtick)
            out.append(text[i:end])
            i = end
            continue
        marker = next((m for m in line if text.startswith(m, i)), None)
        if marker is not None:
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if block and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _string_end(text, start, escapes=True):
    quote, i = text[start], start + 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        if text[i] == "\n" and quote in "'\"":
            return i  # an unterminated one-line string: stop at the line's end
        i += 1
    return len(text)


def _symbols(text, patterns):
    """[(line, name, kind)] from (regex, kind or callable(match)) pairs, in file order."""
    found = []
    for pattern, kind in patterns:
        for match in pattern.finditer(text):
            name = match["name"]
            if match.groupdict().get("recv"):
                # Go methods are named after their receiver: two types' String() are two symbols.
                name = f"{match['recv']}.{name}"
            found.append((match.start("name"), name, kind(match) if callable(kind) else kind))
    found.sort()
    seen, symbols = set(), []
    for index, name, kind in found:
        if (name, kind) in seen:
            continue
        seen.add((name, kind))
        symbols.append({"name": name, "kind": kind, "line": line_of(text, index)})
    return symbols


def _imports(found):
    """Deduplicated by module, first occurrence kept, in line order."""
    seen, imports = set(), []
    for entry in sorted(found, key=lambda e: e["line"]):
        if entry["module"] in seen:
            continue
        seen.add(entry["module"])
        imports.append(entry)
    return imports


# --- Python --------------------------------------------------------------------------------------


def _python(text):
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return [], []
    symbols = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            symbols.append({"name": node.name, "kind": "function", "line": node.lineno})
        elif isinstance(node, ast.ClassDef):
            symbols.append({"name": node.name, "kind": "class", "line": node.lineno})
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and not (target.id.startswith("__") and target.id.endswith("__")):
                    kind = "constant" if target.id.isupper() else "variable"
                    symbols.append({"name": target.id, "kind": kind, "line": node.lineno})
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imports.append({"module": alias.name, "line": node.lineno, "names": [], "level": 0})
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names = [alias.name for alias in node.names if alias.name != "*"]
            imports.append({"module": base, "line": node.lineno, "names": names, "level": node.level})
    imports.sort(key=lambda e: e["line"])
    return _dedupe_symbols(symbols), imports


def _dedupe_symbols(symbols):
    """A name bound twice at top level (if/else variants, re-assignment) is listed once, first."""
    seen, kept = set(), []
    for symbol in symbols:
        if symbol["name"] not in seen:
            seen.add(symbol["name"])
            kept.append(symbol)
    return kept


# --- JavaScript / TypeScript ---------------------------------------------------------------------

_JS_PREFIX = r"^(?:export[ \t]+(?:default[ \t]+)?)?(?:declare[ \t]+)?"
_JS_SYMBOLS = [
    (re.compile(_JS_PREFIX + r"(?:async[ \t]+)?function[ \t]*\*?[ \t]*(?P<name>[A-Za-z_$][\w$]*)", re.M), "function"),
    (re.compile(_JS_PREFIX + r"(?:abstract[ \t]+)?class[ \t]+(?P<name>[A-Za-z_$][\w$]*)", re.M), "class"),
    (re.compile(_JS_PREFIX + r"interface[ \t]+(?P<name>[A-Za-z_$][\w$]*)", re.M), "interface"),
    (re.compile(_JS_PREFIX + r"type[ \t]+(?P<name>[A-Za-z_$][\w$]*)[ \t]*(?:<[^=\n]*>)?[ \t]*=", re.M), "type"),
    (re.compile(_JS_PREFIX + r"(?:const[ \t]+)?enum[ \t]+(?P<name>[A-Za-z_$][\w$]*)", re.M), "enum"),
    (re.compile(_JS_PREFIX + r"namespace[ \t]+(?P<name>[A-Za-z_$][\w$.]*)", re.M), "namespace"),
    (
        re.compile(
            _JS_PREFIX + r"(?:const|let|var)[ \t]+(?P<name>[A-Za-z_$][\w$]*)[ \t]*(?::[^=\n]+)?=[ \t]*"
            r"(?P<function>(?:async[ \t]+)?(?:function\b|\([^)]*\)[ \t]*(?::[^=\n]+)?=>|[A-Za-z_$][\w$]*[ \t]*=>))?",
            re.M,
        ),
        lambda match: "function" if match["function"] else "variable",
    ),
]
_JS_FROM = re.compile(r"^[ \t]*(?:import|export)\b[^'\"`;()=]*?\bfrom[ \t]*(['\"])(?P<module>[^'\"\n]+)\1", re.M)
_JS_BARE = re.compile(r"^[ \t]*import[ \t]*(['\"])(?P<module>[^'\"\n]+)\1", re.M)
_JS_CALL = re.compile(r"(?<![\w$.])(?:require|import)[ \t]*\([ \t]*(['\"`])(?P<module>[^'\"`\n]+)\1[ \t]*\)")


def _javascript(text):
    code = blank_comments(text, quotes="'\"`")
    symbols = _symbols(code, _JS_SYMBOLS)
    found = [
        {"module": match["module"], "line": line_of(code, match.start("module"))}
        for pattern in (_JS_FROM, _JS_BARE, _JS_CALL)
        for match in pattern.finditer(code)
    ]
    return symbols, _imports(found)


# --- Go ------------------------------------------------------------------------------------------

_GO_SYMBOLS = [
    (re.compile(r"^func[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]*[\[(]", re.M), "function"),
    (
        re.compile(r"^func[ \t]*\([ \t]*(?:\w+[ \t]+)?\*?[ \t]*(?P<recv>[A-Za-z_]\w*)(?:\[[^\]]*\])?[ \t]*\)[ \t]*(?P<name>[A-Za-z_]\w*)", re.M),
        "method",
    ),
    (
        re.compile(r"^type[ \t]+(?P<name>[A-Za-z_]\w*)(?:\[[^\]\n]*\])?[ \t]+(?:=[ \t]*)?(?P<what>struct|interface)?", re.M),
        lambda match: match["what"] or "type",
    ),
    (re.compile(r"^const[ \t]+(?P<name>[A-Za-z_]\w*)", re.M), "constant"),
    (re.compile(r"^var[ \t]+(?P<name>[A-Za-z_]\w*)", re.M), "variable"),
]
_GO_GROUP = re.compile(r"^(?P<keyword>type|const|var|import)[ \t]*\((?P<body>.*?)^\)", re.M | re.S)
_GO_IMPORT = re.compile(r"^import[ \t]+(?:(?:\w+|\.)[ \t]+)?\"(?P<module>[^\"]+)\"", re.M)
_GO_IMPORT_LINE = re.compile(r"^[ \t]*(?:(?:\w+|\.)[ \t]+)?\"(?P<module>[^\"]+)\"", re.M)


def _go(text):
    code = blank_comments(text, quotes='"', char_literals=True, raw_backtick=True)
    symbols = _symbols(code, _GO_SYMBOLS)
    found = [{"module": m["module"], "line": line_of(code, m.start("module"))} for m in _GO_IMPORT.finditer(code)]
    grouped = []
    for group in _GO_GROUP.finditer(code):
        keyword, start = group["keyword"], group.start("body")
        if keyword == "import":
            found.extend(
                {"module": m["module"], "line": line_of(code, start + m.start("module"))}
                for m in _GO_IMPORT_LINE.finditer(group["body"])
            )
            continue
        kind = {"const": "constant", "var": "variable"}.get(keyword)
        indent = None
        for line_match in re.finditer(r"^([ \t]+)([A-Za-z_]\w*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*)(.*)$", group["body"], re.M):
            indent = indent or line_match[1]
            if line_match[1] != indent:
                continue  # inside a multi-line value
            rest = line_match[3]
            line = line_of(code, start + line_match.start(2))
            if keyword == "type":
                what = re.match(r"[ \t]*(?:\[[^\]]*\][ \t]*)?(?:=[ \t]*)?(struct|interface)?", rest)
                grouped.append({"name": line_match[2], "kind": what[1] or "type", "line": line})
            else:
                for name in re.split(r"[ \t]*,[ \t]*", line_match[2]):
                    grouped.append({"name": name, "kind": kind, "line": line})
    symbols = sorted(symbols + grouped, key=lambda s: s["line"])
    return symbols, _imports(found)


# --- Java ----------------------------------------------------------------------------------------

_JAVA_SYMBOLS = [
    (
        re.compile(
            r"^(?:@\w+(?:\([^)\n]*\))?[ \t]+)*(?:(?:public|protected|private|abstract|final|static|sealed|non-sealed|strictfp)[ \t]+)*"
            r"(?P<what>class|interface|enum|record|@interface)[ \t]+(?P<name>[A-Za-z_$][\w$]*)",
            re.M,
        ),
        lambda match: "annotation" if match["what"] == "@interface" else match["what"],
    ),
]
_JAVA_IMPORT = re.compile(r"^import[ \t]+(?P<static>static[ \t]+)?(?P<module>[\w$.]+(?:\.\*)?)[ \t]*;", re.M)


def _java(text):
    code = blank_comments(text)
    found = [
        {"module": m["module"], "line": line_of(code, m.start("module")), "static": bool(m["static"])}
        for m in _JAVA_IMPORT.finditer(code)
    ]
    return _symbols(code, _JAVA_SYMBOLS), _imports(found)


# --- PHP -----------------------------------------------------------------------------------------

_PHP_SYMBOLS = [
    (re.compile(r"^(?:(?:abstract|final|readonly)[ \t]+)*(?P<what>class|interface|trait|enum)[ \t]+(?P<name>\w+)", re.M),
     lambda match: match["what"]),
    (re.compile(r"^function[ \t]+&?[ \t]*(?P<name>\w+)[ \t]*\(", re.M), "function"),
    (re.compile(r"^const[ \t]+(?P<name>\w+)", re.M), "constant"),
]
_PHP_USE = re.compile(r"^use[ \t]+(?:function[ \t]+|const[ \t]+)?(?P<module>\\?[\w\\]+)(?:[ \t]+as[ \t]+\w+)?[ \t]*;", re.M)
_PHP_GROUP_USE = re.compile(r"^use[ \t]+(?P<prefix>\\?[\w\\]+)\\\{(?P<items>[^}]*)\}[ \t]*;", re.M)
_PHP_INCLUDE = re.compile(
    r"\b(?:require|include)(?:_once)?[ \t]*\(?[ \t]*(?P<dir>__DIR__[ \t]*\.[ \t]*)?(['\"])(?P<module>[^'\"\n]+)\2"
)


def _php(text):
    code = blank_comments(text, line=("//", "#"))
    found = [{"module": m["module"].lstrip("\\"), "line": line_of(code, m.start("module")), "kind": "use"}
             for m in _PHP_USE.finditer(code)]
    for group in _PHP_GROUP_USE.finditer(code):
        for item in group["items"].split(","):
            name = re.sub(r"\s+as\s+\w+$", "", item.strip())
            if name:
                found.append({"module": f"{group['prefix'].lstrip(chr(92))}\\{name}",
                              "line": line_of(code, group.start("items")), "kind": "use"})
    for m in _PHP_INCLUDE.finditer(code):
        module = m["module"].lstrip("/") if m["dir"] else m["module"]
        found.append({"module": module, "line": line_of(code, m.start("module")), "kind": "include"})
    return _symbols(code, _PHP_SYMBOLS), _imports(found)


# --- Ruby ----------------------------------------------------------------------------------------

_RUBY_SYMBOLS = [
    (re.compile(r"^class[ \t]+(?P<name>[A-Z][\w:]*)", re.M), "class"),
    (re.compile(r"^module[ \t]+(?P<name>[A-Z][\w:]*)", re.M), "module"),
    (re.compile(r"^def[ \t]+(?:self\.)?(?P<name>[A-Za-z_]\w*[?!=]?)", re.M), "function"),
    (re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)[ \t]*=(?!=)", re.M), "constant"),
]
_RUBY_REQUIRE = re.compile(r"^[ \t]*(?P<kind>require_relative|require|load)[ \t]*\(?[ \t]*(['\"])(?P<module>[^'\"\n]+)\2", re.M)


def _ruby(text):
    code = blank_comments(text, line=("#",), block=False)
    code = re.sub(r"^=begin\b.*?^=end\b", lambda m: re.sub(r"[^\n]", " ", m[0]), code, flags=re.M | re.S)
    found = [{"module": m["module"], "line": line_of(code, m.start("module")), "kind": m["kind"]}
             for m in _RUBY_REQUIRE.finditer(code)]
    return _symbols(code, _RUBY_SYMBOLS), _imports(found)


# --- Rust ----------------------------------------------------------------------------------------

_RUST_VIS = r"^(?:pub(?:\([^)\n]*\))?[ \t]+)?"
_RUST_SYMBOLS = [
    (re.compile(_RUST_VIS + r"(?:(?:default|async|const|unsafe|extern(?:[ \t]+\"[^\"]*\")?)[ \t]+)*fn[ \t]+(?P<name>\w+)", re.M), "function"),
    (
        re.compile(_RUST_VIS + r"(?:unsafe[ \t]+)?(?P<what>struct|enum|trait|union|type|mod|const|static)[ \t]+(?:mut[ \t]+)?(?P<name>\w+)", re.M),
        lambda match: {"mod": "module", "const": "constant", "static": "variable"}.get(match["what"], match["what"]),
    ),
    (re.compile(r"^macro_rules![ \t]*(?P<name>\w+)", re.M), "macro"),
]
_RUST_USE = re.compile(_RUST_VIS + r"use[ \t]+(?P<module>[^;]+);", re.M)
_RUST_MOD = re.compile(_RUST_VIS + r"mod[ \t]+(?P<module>\w+)[ \t]*;", re.M)
_RUST_CRATE = re.compile(r"^extern[ \t]+crate[ \t]+(?P<module>\w+)", re.M)


def _rust(text):
    code = blank_comments(text, quotes='"', char_literals=True)
    found = [{"module": re.sub(r"\s+", "", m["module"]), "line": line_of(code, m.start("module")), "kind": "use"}
             for m in _RUST_USE.finditer(code)]
    found += [{"module": m["module"], "line": line_of(code, m.start("module")), "kind": "mod"} for m in _RUST_MOD.finditer(code)]
    found += [{"module": m["module"], "line": line_of(code, m.start("module")), "kind": "crate"} for m in _RUST_CRATE.finditer(code)]
    return _symbols(code, _RUST_SYMBOLS), _imports(found)


_PARSERS = {
    "python": _python,
    "javascript": _javascript,
    "typescript": _javascript,
    "go": _go,
    "java": _java,
    "php": _php,
    "ruby": _ruby,
    "rust": _rust,
}
