"""The LLM decoder (paper Sec. 3.4): an instruction-tuned causal LM, fine-tuned with LoRA [27].

``load_llm`` loads any Hugging Face causal LM and its tokenizer from a hub id or a local path
(``meta-llama/Llama-3.1-8B-Instruct`` in the paper).  Remote code is never loaded.

Modes:

* ``lora``   -- base weights frozen, LoRA adapters trained (paper).  Defaults: ``r = 8``,
  ``alpha = 16``, dropout 0.05 on the attention projections ``q_proj k_proj v_proj o_proj``
  (the paper does not give them; these are the common LLaMA-Omni / PEFT choices);
* ``full``   -- every LLM weight trained;
* ``frozen`` -- nothing in the LLM is trained (only the speech branches learn).

Quantised base weights (``model.llm_quant``, for 24 GB GPUs): ``8bit`` (LLM.int8()) or ``4bit``
(QLoRA: NF4, double quantisation, bfloat16 compute) through bitsandbytes, the model prepared with
``peft.prepare_model_for_kbit_training`` and LoRA trained on top; it needs a CUDA GPU and
``pip install bitsandbytes`` (``pip install 'sedtk[quant]'``), and ``llm_mode`` ``lora`` or ``frozen``.
"""

from __future__ import annotations

import torch
from torch import nn

from sedtk.config import LoraConfig
from sedtk.errors import ConfigError, DependencyError, OptionError
from sedtk.utils.hf import load_checked

LLM_MODES = ("lora", "full", "frozen")
LLM_QUANTS = ("none", "8bit", "4bit")


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
        raise OptionError(f"unknown dtype {name!r} (use one of bfloat16, float16, float32)")
    return table[name]


def quantization_config(quant: str):
    """The ``BitsAndBytesConfig`` of ``model.llm_quant`` (None for ``none``).

    ``4bit`` is QLoRA's recipe: NF4 weights, double quantisation, bfloat16 compute.
    """
    if quant not in LLM_QUANTS:
        raise ConfigError(f"model.llm_quant: unknown value {quant!r} (use one of {', '.join(LLM_QUANTS)})")
    if quant == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quant == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def check_quantization(quant: str, mode: str) -> None:
    """Fail early, saying how to fix it, where ``model.llm_quant`` cannot work here."""
    if quant not in LLM_QUANTS:
        raise ConfigError(f"model.llm_quant: unknown value {quant!r} (use one of {', '.join(LLM_QUANTS)})")
    if quant == "none":
        return
    if mode == "full":
        raise ConfigError(
            f"model.llm_quant={quant} freezes the quantised base weights: use model.llm_mode=lora "
            "(QLoRA) or frozen, or model.llm_quant=none to train the full LLM"
        )
    if not torch.cuda.is_available():
        raise DependencyError(
            f"model.llm_quant={quant} needs a CUDA GPU (bitsandbytes quantised weights), and none is "
            "available here: run on a CUDA GPU, or set model.llm_quant=none"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise DependencyError(
            f"model.llm_quant={quant} needs the bitsandbytes package ({e}): pip install bitsandbytes "
            "(or pip install 'sedtk[quant]') on a CUDA machine, or set model.llm_quant=none"
        ) from None


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    from sedtk.utils.hub import hub_errors

    with hub_errors(name_or_path, "LLM"):
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)


def load_llm(
    name_or_path: str,
    mode: str = "lora",
    dtype: str = "bfloat16",
    lora: LoraConfig | None = None,
    gradient_checkpointing: bool = False,
    attn_implementation: str | None = None,
    quant: str = "none",
) -> tuple[nn.Module, object]:
    """Load ``(model, tokenizer)``; the model is wrapped in PEFT LoRA for ``mode="lora"``.

    In ``lora`` and ``frozen`` modes the base weights have ``requires_grad=False``.  With ``quant``
    ``8bit`` / ``4bit`` the base weights are loaded quantised by bitsandbytes onto the current CUDA
    device and prepared for k-bit training (see the module docstring).
    """
    from transformers import AutoModelForCausalLM

    if mode not in LLM_MODES:
        raise ConfigError(f"model.llm_mode: unknown mode {mode!r} (use one of {', '.join(LLM_MODES)})")
    check_quantization(quant, mode)
    kwargs = {"dtype": torch_dtype(dtype), "trust_remote_code": False}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quant != "none":
        kwargs["quantization_config"] = quantization_config(quant)
        kwargs["device_map"] = {"": torch.cuda.current_device()}  # the process's GPU (set per rank)
    from sedtk.utils.hub import hub_errors

    with hub_errors(name_or_path, "LLM"):  # gated, missing, not cached offline: one clear line
        model, _ = load_checked(
            AutoModelForCausalLM, name_or_path, "LLM", **kwargs
        )  # config must fit weights
    tokenizer = load_tokenizer(name_or_path)
    return prepare_llm(model, mode, lora, gradient_checkpointing, quant), tokenizer


def prepare_llm(
    model: nn.Module,
    mode: str = "lora",
    lora: LoraConfig | None = None,
    gradient_checkpointing: bool = False,
    quant: str = "none",
) -> nn.Module:
    """A loaded causal LM made ready for ``mode``: base weights frozen (``lora`` / ``frozen``),
    k-bit preparation (``quant``), gradient checkpointing, the PEFT LoRA wrapper (``lora``).

    :func:`load_llm` calls it after ``from_pretrained``; ``bench/gpu`` calls it on an LLM built in
    memory at the real shape (random weights), so both run exactly this set-up.
    """
    if mode not in LLM_MODES:
        raise ConfigError(f"model.llm_mode: unknown mode {mode!r} (use one of {', '.join(LLM_MODES)})")
    if mode != "full":
        model.requires_grad_(False)
    if quant != "none":
        from peft import prepare_model_for_kbit_training

        # norms (and other non-quantised weights) in float32, input grads on, checkpointing if asked
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif gradient_checkpointing:
        enable = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )
        enable({"use_reentrant": False})  # training forwards pass use_cache=False themselves
    if mode == "lora":
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        lora = lora or LoraConfig()  # sedtk's defaults (sedtk.config)
        cfg = PeftLoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, cfg)
    return model


def trainable_llm_state(model: nn.Module, mode: str) -> dict[str, torch.Tensor]:
    """The LLM weights that training changes: LoRA adapters (``lora``), everything (``full``), none."""
    if mode == "frozen":
        return {}
    if mode == "full":
        return {k: v for k, v in model.state_dict().items()}
    return {k: v for k, v in model.state_dict().items() if "lora_" in k}
