"""Everything that touches a repository on disk: clone, fetch, worktrees, snapshots, diffs.

Pure functions over paths: no Flask, no database, no HTTP. Callers pass paths, URLs, credentials
and timeouts; every git process is started by `workspaces.git.run_git` (or its bytes twin).
"""
