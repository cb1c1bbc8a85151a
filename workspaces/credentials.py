"""Credentials for private repositories, handed to git through the environment of its process only.

The HTTPS token travels in an environment variable read by a credential helper that git is told
about through environment config (GIT_CONFIG_COUNT…), so it never appears in a URL, an argument, a
file, `.git/config`, or a process listing; the helper answers `get` and ignores `store`/`erase`, and
`run_git` clears every other helper, so nothing persists it either. The SSH key goes through
`GIT_SSH_COMMAND`. Nothing is written to disk, so there is nothing to clean up.
"""
import contextlib
import shlex

from workspaces.git import add_config, clean_environ

TOKEN_VARIABLE = "RUNNER_GIT_TOKEN"
USERNAME_VARIABLE = "RUNNER_GIT_USERNAME"
# Hosts take any user name with a token as password; this one is what GitHub documents.
DEFAULT_USERNAME = "x-access-token"

# Run by git as `sh -c '<this> "$@"' get|store|erase` with the request on stdin. The token is read
# from the environment when git asks, so the snippet itself holds nothing secret.
_HELPER = (
    '!f() { cat >/dev/null; test "$1" = get || return 0; '
    f'printf "username=%s\\npassword=%s\\n" "${{{USERNAME_VARIABLE}:-{DEFAULT_USERNAME}}}" "${TOKEN_VARIABLE}"; '
    "}; f"
)
_SSH_OPTIONS = "-o BatchMode=yes -o StrictHostKeyChecking=accept-new"


def git_env(https_token=None, ssh_key_path=None, base_env=None, *, https_username=None, token_scope=None):
    """(env, secrets) for `run_git` and the functions of `workspaces.repository`.

    - `https_token`: answered to git's HTTPS authentication challenges. `token_scope` (a URL prefix
      such as "https://github.com", or a list of them) limits it to those hosts; without it, any
      HTTPS remote that asks gets the token, so a scope is wise when project URLs come from users.
    - `ssh_key_path`: the only identity ssh offers. Without it ssh still runs in batch mode, so an
      unknown passphrase or host fails instead of waiting for a person.
    - `secrets`: what error messages must never show; pass it on to the git functions.
    """
    env = clean_environ(base_env)
    secrets = ()
    token = (https_token or "").strip()
    if token:
        if any(char.isspace() for char in token):
            raise ValueError("the HTTPS token must not contain whitespace")
        scopes = [token_scope] if isinstance(token_scope, str) else list(token_scope or ())
        keys = [f"credential.{scope}.helper" for scope in scopes] or ["credential.helper"]
        env = add_config(env, [(key, _HELPER) for key in keys])
        env[TOKEN_VARIABLE] = token
        env[USERNAME_VARIABLE] = https_username or DEFAULT_USERNAME
        secrets = (token,)
    if ssh_key_path:
        env["GIT_SSH_COMMAND"] = f"ssh -i {shlex.quote(str(ssh_key_path))} -o IdentitiesOnly=yes {_SSH_OPTIONS}"
    elif "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        env["GIT_SSH_COMMAND"] = f"ssh {_SSH_OPTIONS}"
    return env, secrets


@contextlib.contextmanager
def git_credentials(https_token=None, ssh_key_path=None, base_env=None, **options):
    """`git_env(...)` as a context manager: `with git_credentials(token, key) as (env, secrets):`.

    It creates no files, so leaving the block removes nothing; it exists so that callers read the
    same whichever way credentials are provided.
    """
    yield git_env(https_token, ssh_key_path, base_env, **options)
