"""The project map: one row per source file — path, language, lines, top-level symbols and imports —
computed from the files themselves (`runner.knowledge.symbols`), with each import resolved to the
repository path it names where the language's own rules allow (Python packages and relative
imports, relative JS/TS specifiers, Go modules from go.mod, Java packages, PHP PSR-4 from
composer.json and includes, Ruby require/require_relative, Rust `mod` and `crate::`/`self::`/
`super::` paths). Imports of third-party packages keep `path: None`.
"""
import json
import posixpath
import re
from pathlib import PurePosixPath

from runner.knowledge import files as repo_files
from runner.knowledge import symbols as code_symbols

_JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".vue", ".svelte", ".json")
_JS_COMPILED = {".js": (".ts", ".tsx"), ".jsx": (".tsx",), ".mjs": (".mts",), ".cjs": (".cts",)}


def source_files(repo_dir):
    """The repository's files as the map sees them: the managed docs, which are made from the map,
    are left out (a map listing its own line count would never settle)."""
    from runner.knowledge import docs

    return [f for f in repo_files.repository_files(repo_dir) if f.path not in docs.MANAGED_PATHS]


def build_map(repo_dir, files=None):
    """[{"path", "language", "lines", "symbols", "imports": [{"module", "path"}]}] sorted by path."""
    if files is None:
        files = source_files(repo_dir)
    index = _Index(repo_dir, files)
    rows = []
    for file in files:
        try:
            text = repo_files.read_text(repo_dir, file.path)
        except OSError:
            continue  # removed (or made unreadable) between listing and reading
        symbols, imports = code_symbols.parse(file.language, text)
        rows.append(
            {
                "path": file.path,
                "language": file.language,
                "lines": text.count("\n") + (1 if text and not text.endswith("\n") else 0),
                "symbols": symbols,
                "imports": index.resolve(file.path, file.language, imports),
            }
        )
    return rows


class _Index:
    """What resolving imports needs to know about the repository's layout."""

    def __init__(self, repo_dir, files):
        self.paths = {f.path for f in files}
        self.dirs = {str(parent) for f in files for parent in PurePosixPath(f.path).parents if str(parent) != "."}
        self.by_name = {}
        for path in self.paths:
            self.by_name.setdefault(PurePosixPath(path).name, []).append(path)
        self.packages = {posixpath.dirname(p) for p in self.paths if p.endswith("/__init__.py")}
        self.go_modules = {}
        self.psr4 = []
        crates = (posixpath.dirname(p) for p in self.paths if PurePosixPath(p).name == "Cargo.toml")
        self.cargo_roots = sorted(crates, key=len, reverse=True)  # the innermost crate first
        for path in self.paths:
            name = PurePosixPath(path).name
            if name == "go.mod":
                match = re.search(r"^module\s+(\S+)", _text(repo_dir, path), re.M)
                if match:
                    self.go_modules[match[1].strip('"')] = posixpath.dirname(path)
            elif name == "composer.json":
                self._composer(repo_dir, path)
        self.psr4.sort(key=lambda entry: len(entry[0]), reverse=True)

    def _composer(self, repo_dir, path):
        try:
            data = json.loads(_text(repo_dir, path))
        except ValueError:
            return
        base = posixpath.dirname(path)
        if not isinstance(data, dict):
            return
        for section in ("autoload", "autoload-dev"):
            autoload = data.get(section)
            mapping = autoload.get("psr-4") if isinstance(autoload, dict) else None
            if not isinstance(mapping, dict):
                continue
            for prefix, dirs in mapping.items():
                for directory in dirs if isinstance(dirs, list) else [dirs]:
                    if isinstance(directory, str):
                        self.psr4.append((prefix, _join(base, directory)))

    def resolve(self, path, language, imports):
        resolver = getattr(self, f"_{language}", None)
        resolved, seen = [], set()
        for entry in imports:
            pairs = resolver(path, entry) if resolver else [(entry["module"], None)]
            for module, target in pairs:
                if module not in seen:
                    seen.add(module)
                    resolved.append({"module": module, "path": target})
        return resolved

    def _file(self, candidate):
        return candidate if candidate in self.paths else None

    # Python

    def _python(self, path, entry):
        module, level, names = entry["module"], entry["level"], entry["names"]
        dotted = module.lstrip(".")
        if level:
            package = PurePosixPath(path).parent.parts
            if level - 1 > len(package):
                return [(module, None)]
            roots = ["/".join(package[: len(package) - (level - 1)])]
        else:
            roots = self._python_roots(path)
        pairs, whole = [], not names
        for name in names:
            target = self._python_module(roots, f"{dotted}.{name}" if dotted else name)
            if target:  # `from pkg import mod`: the dependency is on the submodule
                pairs.append((module + ("" if module.endswith(".") else ".") + name, target))
            else:
                whole = True
        if whole:
            pairs.insert(0, (module, self._python_module(roots, dotted)))
        return pairs

    def _python_roots(self, path):
        directory = posixpath.dirname(path)
        roots = [] if directory in self.packages else [directory]  # a script's own folder is on sys.path
        return roots + [root for root in ("", "src", "lib") if root == "" or root in self.dirs]

    def _python_module(self, roots, dotted):
        relative = dotted.replace(".", "/")
        for root in dict.fromkeys(roots):
            base = _join(root, relative)
            candidates = (f"{base}.py", f"{base}/__init__.py", f"{base}.pyi") if relative else (_join(root, "__init__.py"),)
            for candidate in candidates:
                if candidate in self.paths:
                    return candidate
        return None

    # JavaScript / TypeScript

    def _javascript(self, path, entry):
        module = entry["module"]
        if not module.startswith((".", "/")):
            return [(module, None)]  # a package from node_modules
        base = posixpath.normpath(_join(posixpath.dirname(path), module) if module.startswith(".") else module.lstrip("/"))
        if base.startswith(".."):
            return [(module, None)]
        stem, suffix = posixpath.splitext(base)
        candidates = [base, *(base + ext for ext in _JS_EXTENSIONS), *(f"{base}/index{ext}" for ext in _JS_EXTENSIONS)]
        # TypeScript sources import each other by the compiled name: "./util.js" is util.ts.
        candidates += [stem + ext for ext in _JS_COMPILED.get(suffix, ())]
        return [(module, next((c for c in candidates if c in self.paths), None))]

    _typescript = _javascript

    # Go

    def _go(self, path, entry):
        module = entry["module"]
        for prefix in sorted(self.go_modules, key=len, reverse=True):
            if module == prefix or module.startswith(prefix + "/"):
                directory = _join(self.go_modules[prefix], module[len(prefix) :].lstrip("/"))
                return [(module, directory if directory in self.dirs else None)]
        return [(module, None)]

    # Java

    def _java(self, path, entry):
        module = entry["module"]
        parts = module.split(".")
        if parts[-1] == "*":
            package = "/".join(parts[:-1])
            match = next((d for d in sorted(self.dirs) if d == package or d.endswith("/" + package)), None)
            return [(module, match)]
        # com.x.Outer.Inner or a static member: the file is named after the outermost class.
        for length in range(len(parts), 1, -1):
            candidate = "/".join(parts[:length]) + ".java"
            same_name = self.by_name.get(PurePosixPath(candidate).name, [])
            found = [p for p in same_name if p == candidate or p.endswith("/" + candidate)]
            if found:
                return [(module, sorted(found)[0])]
        return [(module, None)]

    # PHP

    def _php(self, path, entry):
        module = entry["module"]
        if entry.get("kind") == "include":
            for candidate in (posixpath.normpath(_join(posixpath.dirname(path), module)), posixpath.normpath(module)):
                if candidate in self.paths:
                    return [(module, candidate)]
            return [(module, None)]
        for prefix, directory in self.psr4:
            if module.startswith(prefix):
                candidate = _join(directory, module[len(prefix) :].replace("\\", "/") + ".php")
                if candidate in self.paths:
                    return [(module, candidate)]
        return [(module, None)]

    # Ruby

    def _ruby(self, path, entry):
        module = entry["module"]
        name = module if module.endswith(".rb") else module + ".rb"
        if entry.get("kind") == "require_relative":
            candidates = [posixpath.normpath(_join(posixpath.dirname(path), name))]
        elif entry.get("kind") == "load":
            candidates = [posixpath.normpath(module)]
        else:
            candidates = [_join("lib", name), name]
        return [(module, next((c for c in candidates if c in self.paths), None))]

    # Rust

    def _rust(self, path, entry):
        module, kind = entry["module"], entry.get("kind")
        if kind == "crate":
            return [(module, None)]
        directory = self._rust_module_dir(path)
        if kind == "mod":
            return [(module, self._file(_join(directory, module + ".rs")) or self._file(_join(directory, module, "mod.rs")))]
        segments = module.split("::{", 1)[0].split("::")
        head = segments[0]
        if head == "crate":
            base, rest = self._rust_src(path), segments[1:]
        elif head in ("self", "super"):
            base, rest = directory, segments
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    base = posixpath.dirname(base)
                rest = rest[1:]
        else:
            return [(module, None)]  # another crate
        if base is None:
            return [(module, None)]
        for length in range(len(rest), 0, -1):
            stem = _join(base, *rest[:length])
            found = self._file(stem + ".rs") or self._file(stem + "/mod.rs")
            if found:
                return [(module, found)]
        if head == "crate":  # an item of the crate root itself
            return [(module, self._file(_join(base, "lib.rs")) or self._file(_join(base, "main.rs")))]
        return [(module, None)]

    def _rust_src(self, path):
        for root in self.cargo_roots:
            if root == "" or path.startswith(root + "/"):
                return _join(root, "src")
        return None

    @staticmethod
    def _rust_module_dir(path):
        pure = PurePosixPath(path)
        if pure.name in ("mod.rs", "lib.rs", "main.rs"):
            return str(pure.parent) if str(pure.parent) != "." else ""
        return str(pure.with_suffix(""))


def _text(repo_dir, path):
    try:
        return repo_files.read_text(repo_dir, path)
    except OSError:
        return ""


def _join(*parts):
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def project_map(project_id):
    """(rows, head commit, tree state) of the project's checkout, parsed once per tree state."""
    from runner.knowledge import cache, docs

    return cache.cached(project_id, "map", build_map, ignore=docs.MANAGED_PATHS)
