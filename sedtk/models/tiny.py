"""Tiny random checkpoints shaped like the paper's two frozen models, for tests and the demo recipe.

``init_tiny(out)`` writes two Hugging Face checkpoint folders with ``save_pretrained``; everything in
sedtk loads them through exactly the code paths used for the real models (paper Sec. 3.1):

``OUT/hubert``
    A random :class:`~transformers.HubertModel` standing in for ``facebook/hubert-large-ls960-ft``:
    the same 7-layer convolutional front end (kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2: 320x
    downsampling, 50 Hz frames at 16 kHz) with narrow channels, and a small pre-LN Transformer.
    Like hubert-large-ls960-ft it uses ``feat_extract_norm="layer"`` with ``do_stable_layer_norm``:
    LayerNorm after every conv layer, over channels, per frame.  We chose this knowingly: it is
    what the real checkpoint has, it makes the model take an ``attention_mask`` (so padded batches
    give the same valid frames as one-by-one), and a random GroupNorm front end (hubert-base style,
    ``"group"``) normalises the first conv layer's output over *time*, so a random tiny model with it
    cannot hear loudness at all; the per-frame LayerNorm keeps more of the signal.  A
    ``Wav2Vec2FeatureExtractor`` (``do_normalize=True``, ``return_attention_mask=True``, as the real
    checkpoint has) is saved beside it.  ``hubert_cnn="light"`` swaps the CNN for two conv layers
    with the same 320x downsampling (:data:`HUBERT_CNNS`): the demo fine-tunes it for CTC on CPU,
    where HuBERT's 7-layer CNN at 32 channels is most of the cost and learns more slowly.

``OUT/llm``
    A random :class:`~transformers.LlamaForCausalLM` standing in for ``meta-llama/Llama-3.1-8B-Instruct``
    with a small byte-level BPE tokenizer trained here (``tokenizers``) on a built-in English corpus
    (generic words and sentences plus the vocabulary of speech captions).  The tokenizer follows
    Llama 3: the same pre-tokenisation regex, byte-level BPE, special tokens appended after the
    ordinary vocabulary in Llama 3.1's order (``<|begin_of_text|>``, ``<|end_of_text|>``,
    ``<|finetune_right_pad_id|>``, ``<|start_header_id|>``, ``<|end_header_id|>``, ``<|eom_id|>``,
    ``<|eot_id|>`` ...), ``<|begin_of_text|>`` prepended on encoding, ``bos_token`` =
    ``<|begin_of_text|>``, ``eos_token`` = ``<|eot_id|>`` (as in the Instruct tokenizer), and the
    generation config stops on ``[<|end_of_text|>, <|eom_id|>, <|eot_id|>]``.  Like the real
    tokenizer it sets **no** ``pad_token``: code that pads must choose one (Llama 3.1 reserves
    ``<|finetune_right_pad_id|>`` for that).  The chat template is Llama-3.1-Instruct's
    (:data:`LLAMA31_CHAT_TEMPLATE`, its tool-calling branches left out): ``<|begin_of_text|>``, a
    system turn that always starts with "Cutting Knowledge Date: December 2023" and "Today Date:
    {date_string}" lines, ``<|start_header_id|>role<|end_header_id|>`` headers and ``<|eot_id|>``
    ending every turn.  Like the Llama 3.2/3.3 templates it writes *today's* date (``strftime_now``)
    when the caller passes no ``date_string`` (3.1 itself falls back to "26 Jul 2024"), so code that
    must not depend on the day has to pass one (sedtk's prompt does: ``prompt.date_string``).
    ``chat_template="llama3"`` gives Meta-Llama-3-Instruct's template instead (Figure 1's layout with
    no date lines).

Both are deterministic for a seed and take a few seconds to build.  They are random: their
outputs mean nothing.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from sedtk.errors import OptionError

#: Llama 3.1's first special tokens, in id order (ids 128000.. there; appended after the BPE vocab here).
LLAMA3_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>",
    "<|reserved_special_token_2|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
)

#: The pre-tokenisation regex of Llama 3 (from its tokenizer.json).
LLAMA3_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Meta-Llama-3-8B-Instruct's chat template (system/user/assistant headers, ``add_generation_prompt``).
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}"
    "{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)

#: Llama-3.1-Instruct's chat template without its tool-calling branches (custom_tools, ipython,
#: tool_calls): the system turn opens with the knowledge-cutoff and date lines, then the system
#: message; ``date_string`` defaults to today's date where the renderer offers ``strftime_now`` (as
#: Llama 3.2/3.3's templates), else to 3.1's fixed "26 Jul 2024".
LLAMA31_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}"
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}"
    "{%- else %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\n' }}"
    "{{- 'Today Date: ' + date_string + '\n\n' }}"
    "{{- system_message }}"
    "{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)

CHAT_TEMPLATES = {"llama3.1": LLAMA31_CHAT_TEMPLATE, "llama3": LLAMA3_CHAT_TEMPLATE}

DEFAULT_BPE_VOCAB_SIZE = 1500


@dataclass(frozen=True)
class TinyModels:
    """Paths of the two checkpoint folders written by :func:`init_tiny`."""

    upstream: Path
    llm: Path


# ----------------------------------------------------------------------------- corpus

_WORDS = """
the a an and or but if then than that this these those there here where when what which who whom whose
why how is are was were be been being am do does did done have has had having will would shall should
can could may might must not no yes all any some many much more most few less least each every other
another such same own only just also very too quite rather so as at by for from in into of off on onto
out over under up down with without about above below between through during before after again once
i you he she it we they me him her us them my your his its our their mine yours hers ours theirs
one two three four five six seven eight nine ten hundred thousand first second third last next
time year day week month hour minute morning evening night today tomorrow yesterday now later soon
man woman child boy girl person people friend family mother father brother sister husband wife son
house home room door window street city country world school work office car train bus road water
food money book letter phone music song story news game party meeting question answer problem idea
good bad new old great little small big large long short high low loud quiet fast slow early late
happy sad angry afraid surprised calm tired excited nervous worried glad sorry sure right wrong true
say said tell told speak spoke talk ask asked know knew think thought feel felt want need like love
hate hope wish see saw look hear heard listen come came go went get got make made take took give gave
find found keep kept let put seem leave left call called try tried help show turn start stop move
live believe bring happen write sit stand lose pay meet run play read learn change follow understand
remember forget wait open close buy sell send build stay fall cut reach kill remain suggest raise pass
please thank thanks hello goodbye okay oh well really maybe never always often sometimes usually still
already yet even ever everything nothing something anything everyone someone nobody anyone
""".split()

_CAPTION_WORDS = """
speaker speakers voice voices tone tones pitch volume speed pace rate energy intensity emotion emotions
emotional emphasis emphasizes emphasized emphasizing stress stressed word words sentence phrase content
topic utterance utterances audio clip recording speech spoken speaking delivers delivered expresses
conveys conveying sounds sounding manner style timbre gender age young middle-aged elderly adult teenager
male female neutral happiness sadness anger fear disgust surprise frustration excitement contempt joy
frustrated disgusted fearful contemptuous cheerful gloomy furious anxious relaxed bored serious
moderate normal average medium fairly slightly extremely very somewhat relatively notably clearly
steady rapid rapidly slowly quickly softly loudly gently firmly brisk leisurely deep shrill
transcript caption describe description descriptor descriptors fine-grained explainable recognition
assistant helpful language input according related information please caption
""".split()

_SENTENCES = (
    "You are a helpful language and speech assistant.",
    "Please caption the input audio according to content and speech descriptor-related information.",
    "Please transcribe the input audio.",
    "Transcribe the speech into text.",
    "What is the emotion of the speaker?",
    "The quick brown fox jumps over the lazy dog.",
    "I can't believe you did that again!",
    "Where were you last night? I waited for hours.",
    "That's wonderful news, congratulations!",
    "I don't know what to say anymore.",
    "Could you please close the window? It's cold in here.",
    "We're going to be late for the meeting.",
    "He said he'd call me back tomorrow morning.",
    "She's been working on this project for three years.",
    "Why would anyone do something like that?",
    "It's not fair, it's just not fair.",
    "Okay, let's start from the beginning.",
    "Thank you so much for coming today.",
    "The train leaves at 7:45 from platform 2.",
    "I'll never forget what happened that day.",
)

_AGES = ("young", "middle-aged", "elderly", "adult", "teenage")
_GENDERS = ("male", "female")
_LEVELS = ("low", "normal", "high", "very high", "very low", "moderate")
_SPEEDS = ("slow", "normal", "fast", "slightly fast", "rather slow")
_EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "frustrated", "excited", "fearful", "calm")


def tokenizer_corpus() -> list[str]:
    """The built-in English training text of the tiny tokenizer (deterministic)."""
    lines = list(_SENTENCES)
    lines += [" ".join(_WORDS[i : i + 12]) for i in range(0, len(_WORDS), 12)]
    lines += [" ".join(_CAPTION_WORDS[i : i + 12]) for i in range(0, len(_CAPTION_WORDS), 12)]
    for i, (age, gender, pitch, vol, speed, emo) in enumerate(
        itertools.product(_AGES, _GENDERS, _LEVELS[:3], _LEVELS[3:], _SPEEDS[:3], _EMOTIONS)
    ):
        if i % 3:
            continue
        quote = _SENTENCES[5 + i % (len(_SENTENCES) - 5)]
        word = quote.split()[i % len(quote.split())].strip(".,!?")
        lines.append(
            f'A {age} {gender} speaker says "{quote}" with {pitch} pitch and {vol} volume, speaking at a '
            f"{speed} speed in a {emo} tone, emphasizing the word '{word}'."
        )
        lines.append(f"The {gender} voice sounds {emo}; the pace is {speed} and the pitch is {pitch}.")
    lines += [f"{n} {n * 7} {n * 13}." for n in range(0, 200, 3)]
    return lines


# ----------------------------------------------------------------------------- builders


def _train_tokenizer(vocab_size: int, chat_template: str = "llama3.1"):
    """A Llama-3-style byte-level BPE trained on :func:`tokenizer_corpus`, wrapped for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    tok.add_special_tokens(list(LLAMA3_SPECIAL_TOKENS))  # appended after the BPE vocab, as in Llama 3
    bos = LLAMA3_SPECIAL_TOKENS[0]
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single=f"{bos}:0 $A:0",
                pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                special_tokens=[(bos, tok.token_to_id(bos))],
            ),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        chat_template=CHAT_TEMPLATES[chat_template],
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=131072,
    )


def build_tiny_llm(
    out: str | os.PathLike,
    seed: int = 0,
    vocab_size: int = DEFAULT_BPE_VOCAB_SIZE,
    chat_template: str = "llama3.1",
) -> Path:
    """Write a tiny random Llama-3-style causal LM and its trained tokenizer to ``out``.

    ``chat_template``: ``"llama3.1"`` (default, Llama-3.1-Instruct's) or ``"llama3"``.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if chat_template not in CHAT_TEMPLATES:
        raise OptionError(f"chat_template {chat_template!r}: use one of {', '.join(CHAT_TEMPLATES)}")
    out = Path(out)
    tokenizer = _train_tokenizer(vocab_size, chat_template)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in LLAMA3_SPECIAL_TOKENS}
    stop = [ids["<|end_of_text|>"], ids["<|eom_id|>"], ids["<|eot_id|>"]]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=176,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        bos_token_id=ids["<|begin_of_text|>"],
        eos_token_id=stop,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Llama-3.1-Instruct's generation defaults (sampling); decoding code must set its own if it wants greedy.
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|begin_of_text|>"], eos_token_id=stop, do_sample=True, temperature=0.6, top_p=0.9
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


#: CNN front ends of the tiny HuBERT: (channels, kernels, strides), both 320x downsampling (50 Hz).
#: ``standard`` is HuBERT's 7-layer CNN (400-sample receptive field); ``light`` two layers -- 5 ms
#: filters every 2.5 ms, then an 8-frame strided conv to 50 Hz -- which trains 2.4x faster on CPU (the
#: demo's CTC fine-tuning: 60 instead of 140 CPU s per epoch of 3,800 utterances, and a lower WER).
HUBERT_CNNS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "standard": ((32,) * 7, (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)),
    "light": ((64, 64), (80, 8), (40, 8)),
}


def build_tiny_hubert(out: str | os.PathLike, seed: int = 0, cnn: str = "standard") -> Path:
    """Write a tiny random HuBERT (hubert-large-ls960-ft layout) and its feature extractor to ``out``.

    ``cnn``: its convolutional front end, ``standard`` (HuBERT's) or ``light`` (:data:`HUBERT_CNNS`).
    """
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    if cnn not in HUBERT_CNNS:
        raise OptionError(f"HuBERT CNN {cnn!r}: use one of {', '.join(HUBERT_CNNS)}")
    conv_dim, conv_kernel, conv_stride = HUBERT_CNNS[cnn]
    out = Path(out)
    config = HubertConfig(
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=conv_dim,
        conv_kernel=conv_kernel,  # 320x downsampling, 50 Hz frames (HuBERT's)
        conv_stride=conv_stride,
        conv_bias=True,
        feat_extract_norm="layer",  # as hubert-large-ls960-ft (see the module docstring)
        do_stable_layer_norm=True,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
    )
    torch.manual_seed(seed)
    model = HubertModel(config)
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(out)
    return out


_README = """# Tiny random models (sedtk)

Written by `sedtk model init-tiny` (seed {seed}).  These are **random, untrained** checkpoints with
the architecture of the paper's frozen models, for tests and the demo recipe only:

- `hubert/`: a tiny HuBERT (hubert-large-ls960-ft layout: {cnn}, 320x downsampling, 50 Hz
  frames, layer-norm front end, pre-LN Transformer) with hidden size {h_dim}, {h_layers} layers.
- `llm/`: a tiny Llama (hidden size {l_dim}, {l_layers} layers) with a {vocab}-token byte-level BPE
  tokenizer trained on a small built-in English corpus, Llama 3 special tokens and the
  Llama-3.1-Instruct chat template.

Load them exactly like real checkpoints: `--upstream {out}/hubert --llm {out}/llm`.
Their outputs mean nothing.
"""


def init_tiny(out: str | os.PathLike, seed: int = 0, hubert_cnn: str = "standard") -> TinyModels:
    """Build both tiny checkpoints under ``out`` (``hubert/``, ``llm/``, ``README.md``).

    Deterministic for a seed: the same seed gives byte-identical weights and tokenizer.
    ``hubert_cnn``: the HuBERT's front end (:data:`HUBERT_CNNS`).
    """
    from transformers import AutoConfig

    from sedtk.utils.io import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    upstream = build_tiny_hubert(out / "hubert", seed=seed, cnn=hubert_cnn)
    llm = build_tiny_llm(out / "llm", seed=seed)
    h, l_ = AutoConfig.from_pretrained(upstream), AutoConfig.from_pretrained(llm)

    atomic_write_text(
        out / "README.md",
        _README.format(
            seed=seed,
            cnn="7-layer CNN" if hubert_cnn == "standard" else f"{len(h.conv_dim)}-layer CNN ({hubert_cnn})",
            h_dim=h.hidden_size,
            h_layers=h.num_hidden_layers,
            l_dim=l_.hidden_size,
            l_layers=l_.num_hidden_layers,
            vocab=l_.vocab_size,
            out=out,
        ),
    )
    return TinyModels(upstream=upstream, llm=llm)
