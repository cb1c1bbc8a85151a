"""Which files of a repository the knowledge features read: the ones a person would call its source.

git decides what belongs to the repository (tracked files plus untracked ones .gitignore does not
exclude); on top of that, binaries, vendored or generated folders, lock files, minified bundles and
very large files are left out, since they only drown the search and the project map in noise.
"""
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workspaces.git import GitError, run_git

MAX_FILE_BYTES = 512 * 1024
# How much of a file is looked at to call it binary (as git does: a NUL byte) or minified.
SNIFF_BYTES = 8192

# Folders holding dependencies, build output or caches, wherever they appear in the tree.
SKIPPED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "bower_components",
        "jspm_packages",
        "vendor",
        "dist",
        "build",
        "target",
        ".venv",
        "venv",
        "site-packages",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".eggs",
        ".gradle",
        ".next",
        ".nuxt",
        ".svelte-kit",
        ".parcel-cache",
        ".turbo",
        ".terraform",
        ".idea",
        ".vscode",
        "coverage",
        "htmlcov",
        "Pods",
        "DerivedData",
    }
)

LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "poetry.lock",
        "Pipfile.lock",
        "pdm.lock",
        "uv.lock",
        "Cargo.lock",
        "composer.lock",
        "Gemfile.lock",
        "go.sum",
        "mix.lock",
        "pubspec.lock",
        "Podfile.lock",
        "packages.lock.json",
        "flake.lock",
    }
)

# Suffixes of files no one reads as source even when they are text.
SKIPPED_SUFFIXES = (".min.js", ".min.css", ".min.mjs", ".map", ".lock", ".pyc", ".pyo", ".class", ".o", ".so")

LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".scala": "scala",
    ".swift": "swift",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".cs": "csharp",
    ".php": "php",
    ".rb": "ruby",
    ".sql": "sql",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".prisma": "prisma",
    ".graphql": "graphql",
    ".gql": "graphql",
    ".proto": "protobuf",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".html": "html",
    ".htm": "html",
    ".vue": "vue",
    ".svelte": "svelte",
    ".css": "css",
    ".scss": "scss",
    ".less": "less",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".xml": "xml",
    ".dart": "dart",
    ".ex": "elixir",
    ".exs": "elixir",
    ".erl": "erlang",
    ".hs": "haskell",
    ".lua": "lua",
    ".pl": "perl",
    ".r": "r",
    ".jl": "julia",
    ".tf": "terraform",
}

LANGUAGES_BY_NAME = {
    "Dockerfile": "dockerfile",
    "Makefile": "make",
    "GNUmakefile": "make",
    "Gemfile": "ruby",
    "Rakefile": "ruby",
    "Jenkinsfile": "groovy",
}


@dataclass(frozen=True)
class RepoFile:
    path: str  # posix, relative to the repository root
    language: str | None
    size: int  # bytes


def language_of(path):
    """The language of `path` from its name, or None when it is not one we know."""
    name = PurePosixPath(path).name
    if name in LANGUAGES_BY_NAME:
        return LANGUAGES_BY_NAME[name]
    return LANGUAGES.get(PurePosixPath(name).suffix.lower())


def repository_files(repo_dir):
    """The repository's source files (see the module docstring), sorted by path."""
    listing = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo_dir)
    files = (repo_file(repo_dir, path) for path in sorted(set(filter(None, listing.split("\0")))))
    return [found for found in files if found is not None]


def repo_file(repo_dir, path):
    """The RepoFile for `path` if it exists in the checkout and passes every rule but git's (the
    caller knows the path from git: a listing or a diff); None otherwise."""
    if not is_candidate(path):
        return None
    full_path = Path(repo_dir) / path
    try:
        info = os.lstat(full_path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # deleted in the checkout but still in git's index
    # Symlinks may point outside the repository; submodules are directories.
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
        return None
    if not _looks_like_source(full_path):
        return None
    return RepoFile(path=path, language=language_of(path), size=info.st_size)


def is_candidate(path):
    """Whether `path` passes the name-based rules (folders, lock files, suffixes); content not read."""
    parts = PurePosixPath(path).parts
    if any(part in SKIPPED_DIRS for part in parts[:-1]):
        return False
    name = parts[-1]
    return name not in LOCK_FILES and not name.lower().endswith(SKIPPED_SUFFIXES)


def _looks_like_source(full_path):
    try:
        with open(full_path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return False
    if b"\0" in head:
        return False
    # Minified or generated bundles: kilobytes of text on a handful of lines.
    if len(head) >= 4096 and len(head) / (head.count(b"\n") + 1) > 500:
        return False
    return True


def read_text(repo_dir, path):
    """The file's text; bytes that are not utf-8 become U+FFFD rather than failing."""
    return (Path(repo_dir) / path).read_text(encoding="utf-8", errors="replace")


def changed_since(repo_dir, commit):
    """Paths added, modified or deleted between `commit` and HEAD; None when `commit` is not in the
    repository any more (a re-clone, rewritten history): then nothing is known to be unchanged."""
    if not commit or not all(char in "0123456789abcdef" for char in commit):
        return None
    try:
        listing = run_git(["diff", "--name-only", "-z", "--no-renames", commit, "HEAD", "--"], cwd=repo_dir)
    except GitError:
        return None
    return [path for path in listing.split("\0") if path]
