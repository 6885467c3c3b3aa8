"""Records -> (instruction, response) pairs, whatever the format, with every skipped turn counted.

Formats: ShareGPT (`conversations` of `from`/`value`), chat `messages` (`role`/`content`), Alpaca
(`instruction`/`input`/`output`), and `instruction`/`prompt` + `response`/`completion`/`output`. A field whose
value is null counts as absent (Parquet and `datasets` fill the columns a row lacks with nulls), so a row with
an extra `"messages": null` is read by its other fields.

Roles are compared trimmed and lower-cased. Assistant names used by common exports (bot, model, chatgpt, ai,
bing, bard, ...) are mapped to the assistant and counted in `mapped_roles`; system-like turns are skipped and
counted in `skipped_turns`; any other role is *counted, not refused* in `unknown_roles` (the turn is skipped), so a
pool with a few odd turns still loads and the report shows what was left out. In a conversation only a user turn
directly followed by an assistant turn makes a pair; the rest is counted: `unanswered_turns` (a user turn
without a reply), `unprompted_turns` (an assistant turn without a question, e.g. a conversation that starts with
the assistant), `empty_conversations`. Which pairs of a conversation are kept is `turns` (counted too):
"first" keeps the first pair only (`later_pairs_skipped`), as the paper's single-turn pool; "with_context" keeps a
later pair with the earlier turns written into its instruction (`later_pairs_with_context`), so "provide the
source" is trained with what it refers to; "all" keeps every pair alone (`later_pairs_without_context`).

Every text is cleaned by `text.clean_text`: a text with nothing visible (zero-width spaces, soft hyphens,
direction marks, Hangul fillers ...) becomes "", which the pool counts as `empty`.

Two fields for one role (`output` and `response`, or `instruction` and `prompt`) with different texts are
refused, naming the row and both fields: taking one silently would train on an answer the user may not have
meant. Equal copies are accepted. A required field that is null is reported as missing, and named as null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from diversity.pools.base import PoolError
from diversity.pools.text import clean_text

TURNS = ("first", "with_context", "all")
LATER_PAIRS = {  # the count each `turns` mode keeps of a conversation's later pairs
    "first": "later_pairs_skipped",
    "with_context": "later_pairs_with_context",
    "all": "later_pairs_without_context",
}
USER_ROLES = {"human", "user", "prompter"}
ASSISTANT_ROLES = {"gpt", "assistant", "bot", "model", "chatgpt", "ai", "chatbot", "bing", "bard", "claude", "gpt-4"}
SYSTEM_ROLES = {"system", "developer", "tool", "function", "ipython"}
_CANONICAL = {"human", "user", "gpt", "assistant"}
_PROMPT_KEYS = ("instruction", "prompt")
_ANSWER_KEYS = ("response", "completion", "output")


def json_text(value: Any) -> str:
    """A comparable form of any field value (texts compare as themselves)."""
    return value if isinstance(value, str) else repr(value)


class RecordReader:
    """Turns records into pairs and keeps the counters of what a record did not yield."""

    def __init__(self, source: str, turns: str = "first") -> None:
        self.source = source
        self.turns = turns
        self.counts: Counter[str] = Counter()
        self.mapped_roles: Counter[str] = Counter()
        self.skipped_turns: Counter[str] = Counter()
        self.unknown_roles: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        """Counters for `Pool.stats` (all keys always present, so reports can compare pools)."""
        keys = ("empty_conversations", "unanswered_turns", "unprompted_turns", *LATER_PAIRS.values())
        return {
            **{key: self.counts[key] for key in keys},
            "mapped_roles": dict(sorted(self.mapped_roles.items())),
            "skipped_turns": dict(sorted(self.skipped_turns.items())),
            "unknown_roles": dict(sorted(self.unknown_roles.items())),
        }

    def error(self, where: str, message: str) -> PoolError:
        return PoolError(f"{self.source}: {where}: {message}")

    def pairs(self, record: Any, where: str, history: list | None = None) -> Iterator[tuple[str, str]]:
        """The (instruction, response) pairs of one record, cleaned (`clean_text`); `where` names it in errors.

        `history` holds the earlier pairs of the same conversation (a conversation split over several records,
        as ShareGPT's "<id>_<part>" rows are, continues in the next record): it is read to decide what a pair
        is (first or later) and extended with this record's pairs. None = this record is a whole conversation.
        """
        history = [] if history is None else history
        for instruction, response in self._pairs(record, where, history):
            yield clean_text(instruction), clean_text(response)

    def _pairs(self, record: Any, where: str, history: list) -> Iterator[tuple[str, str]]:
        if not isinstance(record, dict):
            raise self.error(where, f"expected an object with the fields of a record, got {type(record).__name__}")
        nulls = sorted(key for key, value in record.items() if value is None)
        record = {key: value for key, value in record.items() if value is not None}
        for name in ("conversations", "messages"):
            if name in record:
                yield from self._conversation(record[name], name, where, history)
                return
        prompt_key = self._one_of(record, _PROMPT_KEYS, "instruction", where)
        answer_key = self._one_of(record, _ANSWER_KEYS, "response", where)
        if prompt_key and answer_key:
            prompt = self._text(record, prompt_key, where)
            if prompt_key == "instruction" and "input" in record:
                extra = self._text(record, "input", where)
                prompt = f"{prompt}\n\n{extra}" if clean_text(extra) else prompt
            yield prompt, self._text(record, answer_key, where)
            return
        fields = sorted(record)[:12]
        if prompt_key:
            missing = "field 'output' (or 'response' / 'completion') is missing"
            null = [key for key in _ANSWER_KEYS if key in nulls]
        elif answer_key:
            missing = "field 'instruction' (or 'prompt') is missing"
            null = [key for key in _PROMPT_KEYS if key in nulls]
        else:
            missing = "no 'conversations', 'messages', 'instruction' or 'prompt' field"
            null = [key for key in ("conversations", "messages", *_PROMPT_KEYS) if key in nulls]
        null_note = f"; null: {null}" if null else ""
        raise self.error(where, f"{missing} (fields present: {fields}{null_note})")

    def _one_of(self, record: dict, keys: tuple[str, ...], role: str, where: str) -> str | None:
        """The one field of `keys` that `record` has; two with different texts are refused (no silent pick)."""
        present = [key for key in keys if key in record]
        if len(present) > 1 and len({json_text(record[key]) for key in present}) > 1:
            raise self.error(
                where,
                f"fields {present} each hold the {role} and they differ: keep one field per row (which one to "
                "train on is not guessed)",
            )
        return present[0] if present else None

    def _text(self, record: dict, key: str, where: str) -> str:
        value = record[key]
        if not isinstance(value, str):
            raise self.error(where, f"field '{key}' is not a string ({type(value).__name__}: {str(value)[:40]!r})")
        return value

    def _conversation(self, turns: Any, name: str, where: str, history: list) -> Iterator[tuple[str, str]]:
        if not isinstance(turns, list):
            raise self.error(where, f"field '{name}' is not a list of turns ({type(turns).__name__})")
        if not turns:
            self.counts["empty_conversations"] += 1
            return
        roles, texts = [], []
        for t, turn in enumerate(turns):
            role, text = self._turn(turn, f"{name}[{t}]", where)
            roles.append(role)
            texts.append(text)
        t = 0
        while t < len(roles):
            if roles[t] == "user" and t + 1 < len(roles) and roles[t + 1] == "assistant":
                if history:
                    self.counts[LATER_PAIRS[self.turns]] += 1
                if not history or self.turns == "all":
                    yield texts[t], texts[t + 1]
                elif self.turns == "with_context":
                    yield with_context(history, texts[t]), texts[t + 1]
                history.append((texts[t], texts[t + 1]) if self.turns == "with_context" else None)
                t += 2
                continue
            if roles[t] == "user":
                self.counts["unanswered_turns"] += 1
            elif roles[t] == "assistant":
                self.counts["unprompted_turns"] += 1
            t += 1

    def _turn(self, turn: Any, field: str, where: str) -> tuple[str, str]:
        """(canonical role: user | assistant | other, text) of one turn, counting mapped and odd roles."""
        if not isinstance(turn, dict):
            raise self.error(where, f"field '{field}' is not an object ({type(turn).__name__})")
        turn = {key: value for key, value in turn.items() if value is not None}
        role_key = "from" if "from" in turn else "role"
        text_key = next((key for key in ("value", "content", "text") if key in turn), "value")
        if role_key not in turn:
            raise self.error(where, f"field '{field}.from' (or '.role') is missing (fields present: {sorted(turn)})")
        raw, text = turn[role_key], turn.get(text_key)
        if not isinstance(raw, str):
            raise self.error(where, f"field '{field}.{role_key}' is not a string ({type(raw).__name__})")
        if not isinstance(text, str):
            kind = "missing" if text is None else f"not a string ({type(text).__name__})"
            raise self.error(where, f"field '{field}.{text_key}' is {kind}")
        role = raw.strip().lower()
        if raw not in _CANONICAL and raw != "system" and (role in USER_ROLES or role in ASSISTANT_ROLES):
            self.mapped_roles[raw] += 1
        if role in USER_ROLES:
            return "user", text
        if role in ASSISTANT_ROLES:
            return "assistant", text
        (self.skipped_turns if role in SYSTEM_ROLES else self.unknown_roles)[raw] += 1
        return "other", text


def with_context(history: list[tuple[str, str]], instruction: str) -> str:
    """A later user turn with the conversation before it, as one instruction (plain text, no template tokens)."""
    earlier = "\n\n".join(f"User: {user}\n\nAssistant: {assistant}" for user, assistant in history)
    return f"{earlier}\n\nUser: {instruction}"
