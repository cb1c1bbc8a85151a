"""Retrieval for runs: the project's code most relevant to a prompt, as a prefix the agent reads
before the task (runs with `ragEnabled`), within a token budget."""
import re

from runner import events, settings
from runner.knowledge import index

# Tokens are approximated as characters / 4: close enough for English and code with the models
# Runner drives, and needs no tokenizer (whose counts differ per model anyway).
CHARS_PER_TOKEN = 4
# Hits considered: more than fit in a usual budget, so small chunks can fill what big ones leave.
CANDIDATES = 30
# A hit too long for what is left is cut to its first lines, if at least this much is left.
MIN_PARTIAL_TOKENS = 60

HEADER = (
    "Code from this repository that may be relevant to the task below (found by search over the "
    "project index; paths are relative to the repository root):\n\n"
)
FOOTER = "---\n\nThe task:\n\n"


def tokens(text):
    """The approximate token count of `text`."""
    return -(-len(text) // CHARS_PER_TOKEN)


def rag_context(project_id, prompt, token_budget=None):
    """(prefix_text, chunks) for a run's prompt: the best chunks of the project's index for the
    prompt, formatted with their paths and line ranges, together within `token_budget` (default:
    the `rag.tokenBudget` setting). ("", []) when there is no index or nothing matches.

    `chunks`: [{"path", "startLine", "endLine", "symbol", "score", "tokens"}] as given to the agent
    (a chunk cut to fit reports the lines it kept), for the run's `log` event (see `record`).
    """
    budget = settings.get("rag.tokenBudget") if token_budget is None else token_budget
    if budget <= 0 or not prompt.strip():
        return "", []
    try:
        hits = index.search(index.project_index_path(project_id), prompt, CANDIDATES)
    except index.IndexMissing:
        return "", []
    left = budget - tokens(HEADER) - tokens(FOOTER)
    blocks, chosen = [], []
    for hit in hits:
        if left < MIN_PARTIAL_TOKENS:
            break
        if any(_overlaps(hit, taken) for taken in chosen):
            continue  # windows of one file overlap; the lines are there already
        block, end_line = _block(hit, hit.text.split("\n")), hit.end_line
        if tokens(block) > left:
            block, end_line = _cut(hit, left)
            if block is None:
                continue
        blocks.append(block)
        left -= tokens(block)
        chosen.append(
            {
                "path": hit.path,
                "startLine": hit.start_line,
                "endLine": end_line,
                "symbol": hit.symbol,
                "score": hit.score,
                "tokens": tokens(block),
            }
        )
    if not blocks:
        return "", []
    return HEADER + "".join(blocks) + FOOTER, chosen


def record(run_id, chunks):
    """Stage the run's `log` event saying which chunks of the index were given to the agent."""
    if chunks:
        listed = ", ".join(f"{c['path']}:{c['startLine']}-{c['endLine']}" for c in chunks)
        message = f"Prompt prefixed with {len(chunks)} chunk{'s' if len(chunks) != 1 else ''} from the project index: {listed}"
    else:
        message = "No code from the project index was added to the prompt (no index yet, or nothing matched)."
    used = sum(chunk["tokens"] for chunk in chunks)
    return events.add(run_id, "log", message[:4000], data={"rag": {"chunks": chunks, "tokens": used}})


def _overlaps(hit, taken):
    return hit.path == taken["path"] and hit.start_line <= taken["endLine"] and taken["startLine"] <= hit.end_line


def _block(hit, lines, end_line=None):
    end_line = end_line or hit.end_line
    text = "\n".join(lines)
    # A fence longer than any backtick run inside, so Markdown chunks cannot close it early.
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    label = f" ({hit.symbol})" if hit.symbol else ""
    return f"{hit.path}:{hit.start_line}-{end_line}{label}\n{fence}\n{text}\n{fence}\n\n"


def _cut(hit, left):
    """The hit's first lines that fit in `left` tokens, as (block, end_line); (None, None) if not
    even a few lines do."""
    lines = hit.text.split("\n")
    kept = []
    for line in lines:
        if tokens(_block(hit, [*kept, line], hit.start_line + len(kept))) > left:
            break
        kept.append(line)
    if tokens("\n".join(kept)) < MIN_PARTIAL_TOKENS // 2:
        return None, None
    end_line = hit.start_line + len(kept) - 1
    return _block(hit, kept, end_line), end_line
