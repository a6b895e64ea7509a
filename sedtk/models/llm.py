"""The LLM decoder (paper Sec. 3.4): an instruction-tuned causal LM, fine-tuned with LoRA [27].

``load_llm`` loads any Hugging Face causal LM and its tokenizer from a hub id or a local path
(``meta-llama/Llama-3.1-8B-Instruct`` in the paper).  Remote code is never loaded.

Modes:

* ``lora``   -- base weights frozen, LoRA adapters trained (paper).  Defaults: ``r = 8``,
  ``alpha = 16``, dropout 0.05 on the attention projections ``q_proj k_proj v_proj o_proj``
  (the paper does not give them; these are the common LLaMA-Omni / PEFT choices);
* ``full``   -- every LLM weight trained;
* ``frozen`` -- nothing in the LLM is trained (only the speech branches learn).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

LLM_MODES = ("lora", "full", "frozen")


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


def torch_dtype(name: str) -> torch.dtype:
    """``"bfloat16" | "float16" | "float32"`` -> ``torch.dtype``."""
    table = {
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
        "float32": torch.float32,
        "fp32": torch.float32,
    }
    if name not in table:
        raise ValueError(f"unknown dtype {name!r} (use one of bfloat16, float16, float32)")
    return table[name]


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)


def load_llm(
    name_or_path: str,
    mode: str = "lora",
    dtype: str = "bfloat16",
    lora: LoraSettings | None = None,
    gradient_checkpointing: bool = False,
    attn_implementation: str | None = None,
) -> tuple[nn.Module, object]:
    """Load ``(model, tokenizer)``; the model is wrapped in PEFT LoRA for ``mode="lora"``.

    In ``lora`` and ``frozen`` modes the base weights have ``requires_grad=False``.
    """
    from transformers import AutoModelForCausalLM

    if mode not in LLM_MODES:
        raise ValueError(f"model.llm_mode: unknown mode {mode!r} (use one of {', '.join(LLM_MODES)})")
    kwargs = {"dtype": torch_dtype(dtype), "trust_remote_code": False}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    tokenizer = load_tokenizer(name_or_path)
    if mode != "full":
        model.requires_grad_(False)
    if gradient_checkpointing:
        enable = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )
        enable({"use_reentrant": False})  # training forwards pass use_cache=False themselves
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        lora = lora or LoraSettings()
        cfg = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, cfg)
    return model, tokenizer


def trainable_llm_state(model: nn.Module, mode: str) -> dict[str, torch.Tensor]:
    """The LLM weights that training changes: LoRA adapters (``lora``), everything (``full``), none."""
    if mode == "frozen":
        return {}
    if mode == "full":
        return {k: v for k, v in model.state_dict().items()}
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}
