"""Prompt assembly (paper Sec. 3.4, Figure 1, bottom middle).

The prompt is rendered with the LLM tokenizer's *own* chat template::

    system:    [Cutting Knowledge Date / Today Date lines of Llama 3.1-style templates]
               "You are a helpful language and speech assistant."
    user:      <Content>\\n<Speech descriptor>\\n<instruction>
    assistant: <answer><end-of-turn>

The user turn is rendered with two unique placeholder strings, split on them, and the three text
pieces are tokenised without special tokens (the template already holds ``<|begin_of_text|>``).  The
content and descriptor embeddings ``S^Con`` / ``S^Des`` are spliced into ``inputs_embeds`` at the
placeholder positions.  Llama-3.1-style templates write a "Today Date" line into the system turn;
the builder always passes a fixed ``date_string`` (``DATE_STRING``, the 3.1 template's own default),
so a prompt never depends on the day it is built (templates that use ``strftime_now`` would otherwise
change every prompt, and a model's training and decoding prompts would differ).  Training sequences
end with the answer tokens and the template's end-of-turn token (``<|eot_id|>`` for Llama 3); labels
are -100 everywhere but the answer.  Training batches are right-padded; generation batches are
left-padded.  Position ids always count valid tokens only.

Tasks (Sec. 3.5) and their answers (the target templates are configurable):

* ``asr``     -- the transcript;
* ``ser_sed`` -- the description followed by a parseable label, ``"{description} Emotion: {emotion}."``;
* ``ser``     -- the label only, ``"Emotion: {emotion}."`` (Tab. 2 Sys. 5).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from sedtk.config import DATE_STRING, DEFAULT_INSTRUCTIONS, SYSTEM_PROMPT
from sedtk.data.emotions import label_word, label_words
from sedtk.errors import CheckpointError, ConfigError, MissingKeyError

#: Fields a target template may use, and the data dir field each one needs.
TARGET_FIELDS = {"text": "text", "description": "description", "emotion": "emotion"}

CONTENT_PLACEHOLDER = "<<sedtk:content>>"
DESCRIPTOR_PLACEHOLDER = "<<sedtk:descriptor>>"
_ANSWER_MARKER = "<<sedtk:answer>>"
IGNORE_INDEX = -100


# ----------------------------------------------------------------------------- targets


def template_fields(template: str) -> list[str]:
    """The ``{field}`` names a target template uses; unknown names are an error."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    unknown = [f for f in fields if f not in TARGET_FIELDS]
    if unknown:
        raise ConfigError(
            f"target template {template!r}: unknown field {{{unknown[0]}}} (known: {sorted(TARGET_FIELDS)})"
        )
    return fields


def make_target(
    template: str,
    text: str | None = None,
    description: str | None = None,
    emotion: str | None = None,
    inventory: Sequence[str] | None = None,
) -> str | None:
    """Fill a target template; None when a field it needs is missing or empty (the example is skipped).

    ``emotion`` is a corpus label; it is written as its natural word (``ang`` -> ``angry``), distinct
    within ``inventory`` when given (:func:`sedtk.data.emotions.label_words`).
    """
    word = label_word(emotion, inventory) if emotion else None
    values = {"text": text, "description": description, "emotion": word}
    needed = template_fields(template)
    if any(not (values[f] or "").strip() for f in needed):
        return None
    return template.format(**{f: " ".join(str(values[f]).split()) for f in needed})


@dataclass(frozen=True)
class LabelScoring:
    """How to score labels after a generated answer with template ``head{emotion}tail``."""

    marker: str  # literal text just before the label in the template, e.g. "Emotion:"
    head: str  # the template before {emotion}, still holding {description} where it does
    tail: str  # the template after {emotion}, e.g. "."

    def prefix(self, generated: str = "") -> str:
        """Text preceding the label: the template head with the description read from ``generated``."""
        if "{description}" not in self.head:
            return self.head
        desc = generated
        if self.marker and self.marker in generated:
            desc = generated[: generated.rindex(self.marker)]
        return self.head.format(description=" ".join(desc.split()))

    def candidate(self, label: str, inventory: Sequence[str] | None = None) -> str:
        """The continuation scored for ``label``: its word (distinct within ``inventory``) and the tail."""
        return label_word(label, inventory) + self.tail


def label_scoring(template: str) -> LabelScoring:
    """Split a target template at ``{emotion}`` (which must occur exactly once)."""
    template_fields(template)
    if template.count("{emotion}") != 1:
        raise ConfigError(
            f"target template {template!r} must contain {{emotion}} exactly once to score labels"
        )
    head, tail = template.split("{emotion}")
    if "{" in tail:
        raise ConfigError(f"target template {template!r}: nothing but literal text may follow {{emotion}}")
    marker = head.split("}")[-1].strip() if "}" in head else head.strip()
    return LabelScoring(marker=marker, head=head, tail=tail)


# ----------------------------------------------------------------------------- prompt layout

#: In an instruction, replaced by the label inventory's words: "neutral, happy, angry, sad".
EMOTIONS_FIELD = "{emotions}"


def fill_emotions(instruction: str, emotions: Sequence[str] | None, task: str = "") -> str:
    """``instruction`` with ``{emotions}`` replaced by the inventory's words (comma-separated).

    The inventory is the model's training labels (``prompt.emotions``, filled by ``sedtk train`` from
    the data dir's ``emotions`` when an instruction asks for it), so training and decoding prompts are
    the same whatever labels a decode is scored into.
    """
    if EMOTIONS_FIELD not in instruction:
        return instruction
    if not emotions:
        raise ConfigError(
            f"prompt.instructions.{task} names {EMOTIONS_FIELD} but prompt.emotions is empty "
            "(sedtk train fills it from the training data dir's emotions)"
        )
    return instruction.replace(EMOTIONS_FIELD, ", ".join(label_words(emotions).values()))


@dataclass(frozen=True)
class PromptPieces:
    """Token ids of the text around the two speech slots of one task's prompt."""

    pre: list[int]  # <|begin_of_text|> ... user header
    mid: list[int]  # between <Content> and <Speech descriptor>
    post: list[int]  # instruction, <|eot_id|>, assistant header


@dataclass
class PromptBatch:
    """LLM inputs for a batch of spliced prompts."""

    inputs_embeds: torch.Tensor  # (B, S, H)
    attention_mask: torch.Tensor  # (B, S)
    position_ids: torch.Tensor  # (B, S)
    labels: torch.Tensor  # (B, S), IGNORE_INDEX outside answers
    input_ids: torch.Tensor  # (B, S), pad id at speech slots and padding (for inspection and tests)
    speech_mask: torch.Tensor  # (B, S) True where a speech embedding sits


class PromptBuilder:
    """Renders task prompts with the tokenizer's chat template and splices speech embeddings in."""

    def __init__(
        self,
        tokenizer,
        system: str = SYSTEM_PROMPT,
        instructions: Mapping[str, str] | None = None,
        date_string: str = DATE_STRING,
        emotions: Sequence[str] | None = None,
    ):
        if getattr(tokenizer, "chat_template", None) is None:
            raise CheckpointError(
                f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; "
                "use an instruction-tuned LLM (e.g. meta-llama/Llama-3.1-8B-Instruct)"
            )
        self.tokenizer = tokenizer
        self.system = system
        self.date_string = date_string
        self.instructions = {
            task: fill_emotions(text, emotions, task)
            for task, text in (DEFAULT_INSTRUCTIONS if instructions is None else instructions).items()
        }
        self._pieces: dict[str, PromptPieces] = {}
        self.eot_id = self._end_of_turn_id()
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eot_id

    # -- template -----------------------------------------------------------------------------
    def messages(self, task: str, answer: str | None = None) -> list[dict[str, str]]:
        if task not in self.instructions:
            raise MissingKeyError(
                f"no instruction for task {task!r} (configured: {sorted(self.instructions)})"
            )
        user = f"{CONTENT_PLACEHOLDER}\n{DESCRIPTOR_PLACEHOLDER}\n{self.instructions[task]}"
        msgs = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        if answer is not None:
            msgs.append({"role": "assistant", "content": answer})
        return msgs

    def render(self, task: str) -> str:
        """The prompt text with placeholders, ending in the assistant header."""
        return self.apply_template(self.messages(task), add_generation_prompt=True)

    def apply_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
        """The chat template's text for ``messages``, with the fixed ``date_string``."""
        return self.tokenizer.apply_chat_template(
            messages,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            date_string=self.date_string,
        )

    def pieces(self, task: str) -> PromptPieces:
        if task not in self._pieces:
            text = self.render(task)
            for ph in (CONTENT_PLACEHOLDER, DESCRIPTOR_PLACEHOLDER):
                if text.count(ph) != 1:
                    raise CheckpointError(
                        f"chat template of {self.tokenizer.name_or_path!r} does not keep the user turn "
                        "verbatim"
                    )
            pre, rest = text.split(CONTENT_PLACEHOLDER)
            mid, post = rest.split(DESCRIPTOR_PLACEHOLDER)
            self._pieces[task] = PromptPieces(self.encode(pre), self.encode(mid), self.encode(post))
        return self._pieces[task]

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _end_of_turn_id(self) -> int:
        """The token the template closes an assistant turn with (``<|eot_id|>`` for Llama 3)."""
        tok = self.tokenizer
        msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": _ANSWER_MARKER}]
        text = self.apply_template(msgs)
        suffix = text.split(_ANSWER_MARKER, 1)[1].strip() if _ANSWER_MARKER in text else ""
        ids = self.encode(suffix) if suffix else []
        if ids:
            return ids[0]
        if tok.eos_token_id is None:
            raise CheckpointError(f"tokenizer {tok.name_or_path!r}: cannot find the end-of-turn token")
        return tok.eos_token_id

    def answer_ids(self, text: str) -> list[int]:
        """Answer tokens followed by the end-of-turn token."""
        return self.encode(text) + [self.eot_id]

    def stop_ids(self) -> list[int]:
        ids = [self.eot_id]
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    # -- splicing -----------------------------------------------------------------------------
    def assemble(
        self,
        task: str,
        embed: Callable[[torch.Tensor], torch.Tensor],
        content: torch.Tensor,
        content_lengths: torch.Tensor,
        descriptor: torch.Tensor | None,
        descriptor_lengths: torch.Tensor | None,
        answers: Sequence[Sequence[int]] | None = None,
        label_from: Sequence[int] | None = None,
        padding_side: str = "right",
    ) -> PromptBatch:
        """Build LLM inputs for ``B`` examples of one task.

        Args:
            embed: the LLM's input embedding module.
            content: ``(B, Nc, H)`` content embeddings ``S^Con``; ``content_lengths`` ``(B,)``.
            descriptor: ``(B, Nd, H)`` descriptor embeddings ``S^Des`` or None (slot left empty).
            answers: per example, answer token ids appended after the prompt (None: prompt only).
            label_from: per example, the first answer token that is labelled (default 0: all of them).
            padding_side: ``"right"`` for training and scoring, ``"left"`` for generation.
        """
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        p = self.pieces(task)
        b = content.shape[0]
        c_len = content_lengths.tolist()
        d_len = descriptor_lengths.tolist() if descriptor is not None else [0] * b
        answers = [list(a) for a in answers] if answers is not None else [[] for _ in range(b)]
        label_from = list(label_from) if label_from is not None else [0] * b
        rows: list[tuple[list[int], list[bool], list[int]]] = []
        for i in range(b):
            ids = p.pre + [self.pad_id] * c_len[i] + p.mid + [self.pad_id] * d_len[i] + p.post + answers[i]
            speech = (
                [False] * len(p.pre)
                + [True] * c_len[i]
                + [False] * len(p.mid)
                + [True] * d_len[i]
                + [False] * (len(p.post) + len(answers[i]))
            )
            n_prompt = len(ids) - len(answers[i])
            labels = [IGNORE_INDEX] * (n_prompt + label_from[i]) + answers[i][label_from[i] :]
            rows.append((ids, speech, labels))
        s = max(len(r[0]) for r in rows)
        device = content.device
        input_ids = torch.full((b, s), self.pad_id, dtype=torch.long)
        speech_mask = torch.zeros((b, s), dtype=torch.bool)
        labels = torch.full((b, s), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((b, s), dtype=torch.long)
        for i, (ids, speech, lab) in enumerate(rows):
            n = len(ids)
            sl = slice(0, n) if padding_side == "right" else slice(s - n, s)
            input_ids[i, sl] = torch.tensor(ids)
            speech_mask[i, sl] = torch.tensor(speech)
            labels[i, sl] = torch.tensor(lab)
            attention[i, sl] = 1
        input_ids, speech_mask, labels, attention = (
            t.to(device) for t in (input_ids, speech_mask, labels, attention)
        )
        parts = []
        for i in range(b):
            parts.append(content[i, : c_len[i]])
            if descriptor is not None:
                parts.append(descriptor[i, : d_len[i]])
        text_embeds = embed(input_ids)  # (B, S, H)
        speech = torch.cat(parts, dim=0).to(text_embeds.dtype)  # (sum of slot lengths, H)
        inputs_embeds = text_embeds.masked_scatter(speech_mask.unsqueeze(-1), speech)  # (B, S, H)
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)  # (B, S)
        return PromptBatch(inputs_embeds, attention, position_ids, labels, input_ids, speech_mask)
