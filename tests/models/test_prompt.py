"""Prompt assembly with the LLM's own chat template (paper Sec. 3.4, Figure 1)."""

from __future__ import annotations

import copy

import pytest
import torch

from sedtk.models.llm import load_tokenizer
from sedtk.models.prompt import (
    CONTENT_PLACEHOLDER,
    DESCRIPTOR_PLACEHOLDER,
    IGNORE_INDEX,
    PromptBuilder,
    label_scoring,
    make_target,
)
from tests.models.test_sed_model import shared_assets


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(str(shared_assets().llm))


@pytest.fixture(scope="module")
def builder(tok):
    return PromptBuilder(tok)


def test_rendered_prompt_is_figure_1_layout(builder):
    text = builder.render("ser_sed")  # Llama 3.1's template: its date lines open the system turn
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "You are a helpful language and speech assistant.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n"
        f"{CONTENT_PLACEHOLDER}\n{DESCRIPTOR_PLACEHOLDER}\n"
        "Please caption the input audio according to content and speech descriptor-related information."
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_pieces_equal_template_tokens_around_the_placeholders(tok, builder):
    # with the placeholders registered as single tokens, the template's own tokenisation must be
    # exactly pre + <content> + mid + <descriptor> + post (no merges across the splice points)
    tok2 = copy.deepcopy(tok)
    tok2.add_special_tokens({"additional_special_tokens": [CONTENT_PLACEHOLDER, DESCRIPTOR_PLACEHOLDER]})
    c_id, d_id = tok2.convert_tokens_to_ids([CONTENT_PLACEHOLDER, DESCRIPTOR_PLACEHOLDER])
    for task in ("ser_sed", "asr", "ser"):
        p = builder.pieces(task)
        full = tok2(builder.render(task), add_special_tokens=False)["input_ids"]
        assert full == p.pre + [c_id] + p.mid + [d_id] + p.post
        assert p.pre[0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
        assert p.pre.count(tok.convert_tokens_to_ids("<|begin_of_text|>")) == 1  # no double BOS
        # a full conversation with the answer: the answer tokens + <|eot_id|> follow the prompt
        answer = "A calm voice. Emotion: neutral."
        conv = tok2.apply_chat_template(
            builder.messages(task, answer), tokenize=False, date_string=builder.date_string
        )
        conv_ids = tok2(conv, add_special_tokens=False)["input_ids"]
        assert conv_ids == p.pre + [c_id] + p.mid + [d_id] + p.post + builder.answer_ids(answer)
    assert builder.eot_id == tok.convert_tokens_to_ids("<|eot_id|>")


def _embed(vocab: int, dim: int):
    torch.manual_seed(0)
    return torch.nn.Embedding(vocab, dim)


@pytest.mark.parametrize("side", ["right", "left"])
def test_assemble_splices_embeddings_and_masks_labels(tok, builder, side):
    emb = _embed(len(tok), 8)
    content = torch.randn(2, 4, 8)
    descriptor = torch.randn(2, 4, 8)
    c_len, d_len = torch.tensor([4, 2]), torch.tensor([3, 1])
    answers = [[11, 12, 13], [14]]
    out = builder.assemble("asr", emb, content, c_len, descriptor, d_len, answers=answers, padding_side=side)
    p = builder.pieces("asr")
    lengths = [
        len(p.pre) + int(c_len[i]) + len(p.mid) + int(d_len[i]) + len(p.post) + len(answers[i])
        for i in (0, 1)
    ]
    s = max(lengths)
    assert out.inputs_embeds.shape == (2, s, 8)
    for i in (0, 1):
        n = lengths[i]
        off = 0 if side == "right" else s - n
        valid = slice(off, off + n)
        assert out.attention_mask[i].sum() == n and out.attention_mask[i, valid].all()
        assert out.position_ids[i, valid].tolist() == list(range(n))
        ids = out.input_ids[i, valid].tolist()
        c0 = len(p.pre)
        d0 = c0 + int(c_len[i]) + len(p.mid)
        a0 = d0 + int(d_len[i]) + len(p.post)
        assert (
            ids[:c0] == p.pre
            and ids[c0 + int(c_len[i]) : d0] == p.mid
            and ids[d0 + int(d_len[i]) : a0] == p.post
        )
        assert ids[a0:] == answers[i]
        rows = out.inputs_embeds[i, valid]
        assert torch.equal(rows[c0 : c0 + int(c_len[i])], content[i, : int(c_len[i])])
        assert torch.equal(rows[d0 : d0 + int(d_len[i])], descriptor[i, : int(d_len[i])])
        text = ~out.speech_mask[i, valid]
        assert int(out.speech_mask[i].sum()) == int(c_len[i] + d_len[i])
        assert torch.equal(rows[text], emb(out.input_ids[i, valid][text]))
        labels = out.labels[i, valid].tolist()
        assert labels[:a0] == [IGNORE_INDEX] * a0 and labels[a0:] == answers[i]
        assert (out.labels[i, ~out.attention_mask[i].bool()] == IGNORE_INDEX).all()


def test_assemble_without_descriptor_and_partial_labels(tok, builder):
    emb = _embed(len(tok), 8)
    content = torch.randn(1, 3, 8)
    out = builder.assemble(
        "ser", emb, content, torch.tensor([3]), None, None, answers=[[5, 6, 7]], label_from=[2]
    )
    p = builder.pieces("ser")
    assert out.input_ids.shape[1] == len(p.pre) + 3 + len(p.mid) + len(p.post) + 3
    assert out.labels[0].tolist().count(IGNORE_INDEX) == out.labels.shape[1] - 1
    assert out.labels[0, -1] == 7
    # gradients flow from the LLM input back into the speech embeddings
    content.requires_grad_(True)
    out = builder.assemble("ser", emb, content, torch.tensor([3]), None, None)
    out.inputs_embeds.sum().backward()
    assert content.grad is not None and torch.all(content.grad == 1)


def test_targets_skip_missing_fields_and_labels_are_scored_after_the_marker():
    assert make_target("{description} Emotion: {emotion}.", description="Calm.", emotion="ang") == (
        "Calm. Emotion: angry."
    )
    assert make_target("{description} Emotion: {emotion}.", description="  ", emotion="ang") is None
    assert make_target("{text}", text=None) is None
    with pytest.raises(ValueError, match="unknown field"):
        make_target("{speaker}")
    sc = label_scoring("{description} Emotion: {emotion}.")
    assert sc.marker == "Emotion:"
    assert sc.prefix("A low voice. Emotion: sad.") == "A low voice. Emotion: "
    assert sc.prefix("A low voice") == "A low voice Emotion: "
    assert sc.candidate("hap") == "happy."
    assert label_scoring("Emotion: {emotion}.").prefix("ignored") == "Emotion: "


def test_llama31_prompt_does_not_depend_on_today(tok, builder, monkeypatch):
    import datetime as dt

    import transformers.utils.chat_template_utils as ctu

    seen = []
    for day in (dt.datetime(2025, 1, 1), dt.datetime(2026, 12, 2)):

        class Clock(dt.datetime):
            @classmethod
            def now(cls, tz=None, _day=day):
                return _day

        monkeypatch.setattr(ctu, "datetime", Clock)
        raw = tok.apply_chat_template(builder.messages("asr"), tokenize=False, add_generation_prompt=True)
        fresh = PromptBuilder(tok)
        seen.append((raw, fresh.render("ser_sed"), fresh.pieces("ser_sed"), fresh.eot_id))
    assert "Today Date: 01 Jan 2025" in seen[0][0] and "Today Date: 02 Dec 2026" in seen[1][0]  # the clock
    assert seen[0][1:] == seen[1][1:]  # sedtk's prompt: the same tokens whatever the day
    assert "Today Date: 26 Jul 2024" in seen[0][1]


def test_llama31_slots_labels_and_end_of_turn(tok, builder):
    emb = _embed(len(tok), 8)
    c_len, d_len = torch.tensor([5, 2]), torch.tensor([3, 4])
    texts = ["A calm voice. Emotion: neutral.", "Hi."]
    answers = [builder.answer_ids(t) for t in texts]
    out = builder.assemble(
        "ser_sed", emb, torch.randn(2, 5, 8), c_len, torch.randn(2, 4, 8), d_len, answers=answers
    )
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    for i in (0, 1):
        n = int(out.attention_mask[i].sum())
        ids, labels, speech = out.input_ids[i, :n], out.labels[i, :n], out.speech_mask[i, :n]
        slots = speech.nonzero()[:, 0].tolist()
        c0 = slots[0]
        # the content slot opens the user turn, right after its header; the descriptor slot follows "\n"
        before = tok.decode(ids[:c0])
        assert before.endswith("<|start_header_id|>user<|end_header_id|>\n\n")
        assert "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" in before
        assert before.count("<|eot_id|>") == 1  # only the system turn is closed before the speech
        d0 = c0 + int(c_len[i]) + len(builder.pieces("ser_sed").mid)
        assert slots == list(range(c0, c0 + int(c_len[i]))) + list(range(d0, d0 + int(d_len[i])))
        assert tok.decode(ids[c0 + int(c_len[i]) : d0]) == "\n"
        # labels: -100 everywhere but the answer and its end-of-turn token, which closes the sequence
        a0 = n - len(answers[i])
        assert (labels[:a0] == IGNORE_INDEX).all() and labels[a0:].tolist() == answers[i]
        assert answers[i][-1] == eot and ids[-1] == eot
        assert tok.decode(ids[:a0]).endswith("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        assert tok.decode(labels[a0:-1]) == texts[i]


def test_instruction_names_the_label_inventory(tok):
    from sedtk.errors import ConfigError
    from sedtk.models.prompt import fill_emotions

    inv = ["neutral", "calm", "hap", "pleasant_surprise"]
    b = PromptBuilder(tok, instructions={"ser": "Which emotion: {emotions}?"}, emotions=inv)
    assert "Which emotion: neutral, calm, happy, pleasant surprise?<|eot_id|>" in b.render("ser")
    assert fill_emotions("Transcribe.", None) == "Transcribe."
    with pytest.raises(ConfigError, match=r"prompt.instructions.ser names \{emotions\}"):
        PromptBuilder(tok, instructions={"ser": "Which emotion: {emotions}?"})
    assert make_target("Emotion: {emotion}.", emotion="calm", inventory=inv) == "Emotion: calm."
    assert label_scoring("Emotion: {emotion}.").candidate("calm", inv) == "calm."
