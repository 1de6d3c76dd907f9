"""``gateway convert-onnx MODEL.gguf OUT_DIR``: a GGUF model as an onnxruntime-genai model folder.

No ready onnxruntime-genai model ships on PyPI, so this turns a GGUF one has into one, offline:

1. dequantize every tensor with the ``gguf`` package and write a Hugging Face Llama checkpoint
   (``config.json`` from the GGUF metadata, ``model.safetensors`` in float32, with llama.cpp's
   row permutation of the Q and K projections undone);
2. write ``tokenizer.json`` from the GGUF vocabulary and merges with the ``tokenizers``
   library, and ``tokenizer_config.json`` with the GGUF's chat template;
3. run onnxruntime-genai's model builder on that folder (``-p int4 -e cpu`` by default).

Supported: the ``llama`` architecture (Llama, SmolLM, Mistral-style GGUFs) with a byte-level
BPE vocabulary (``tokenizer.ggml.model`` gpt2). Needs ``gguf``, ``tokenizers``,
``safetensors``, ``onnxruntime-genai``, ``onnx_ir``, ``transformers`` and ``torch``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BUILDER = "onnxruntime_genai.models.builder"
NEEDS = "pip install gguf tokenizers safetensors onnxruntime-genai onnx_ir transformers torch"

# llama.cpp's pre-tokenizer names → the Hugging Face pre-tokenizer doing the same split.
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?"
                r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?"
               r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class ConvertError(Exception):
    """The GGUF cannot be converted; the message says why in one line."""


class GGUFModel:
    """The metadata and tensors of a GGUF file."""

    def __init__(self, path: Path) -> None:
        import gguf

        self.reader = gguf.GGUFReader(str(path))
        self.arch = self.get("general.architecture")
        if self.arch != "llama":
            raise ConvertError(f"{path}: architecture '{self.arch}' is not supported (llama only)")

    def get(self, key: str, default: Any = None) -> Any:
        field = self.reader.fields.get(key)
        return default if field is None else field.contents()

    def hp(self, key: str, default: Any = None) -> Any:
        """A hyperparameter of the architecture (``llama.block_count``...)."""
        return self.get(f"{self.arch}.{key}", default)

    def tensors(self) -> dict[str, Any]:
        """Every tensor as a float32 numpy array in PyTorch's (rows, columns) order."""
        import numpy as np
        from gguf.quants import dequantize

        out = {}
        for tensor in self.reader.tensors:
            array = dequantize(tensor.data, tensor.tensor_type)
            shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
            out[tensor.name] = np.ascontiguousarray(array.reshape(shape), dtype=np.float32)
        return out


def unpermute(weight: Any, n_head: int) -> Any:
    """Undo llama.cpp's ``permute`` of a Q or K projection (rotary halves → interleaved)."""
    rows = weight.shape[0]
    return (weight.reshape(n_head, rows // n_head // 2, 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def hf_config(model: GGUFModel, tied: bool) -> dict[str, Any]:
    n_embd, n_head = int(model.hp("embedding_length")), int(model.hp("attention.head_count"))
    tokens = model.get("tokenizer.ggml.tokens")
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": n_embd,
        "intermediate_size": int(model.hp("feed_forward_length")),
        "num_hidden_layers": int(model.hp("block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": int(model.hp("attention.head_count_kv", n_head)),
        "head_dim": int(model.hp("rope.dimension_count", n_embd // n_head)),
        "max_position_embeddings": int(model.hp("context_length")),
        "rms_norm_eps": float(model.hp("attention.layer_norm_rms_epsilon")),
        "rope_theta": float(model.hp("rope.freq_base", 10000.0)),
        "vocab_size": int(model.hp("vocab_size", len(tokens))),
        "tie_word_embeddings": tied,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": model.get("tokenizer.ggml.bos_token_id"),
        "eos_token_id": model.get("tokenizer.ggml.eos_token_id"),
        "torch_dtype": "float32",
    }


_LAYER_NAMES = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
_TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def hf_tensors(model: GGUFModel) -> dict[str, Any]:
    n_head = int(model.hp("attention.head_count"))
    n_head_kv = int(model.hp("attention.head_count_kv", n_head))
    out = {}
    for name, array in model.tensors().items():
        base, _, kind = name.rpartition(".")
        if base.startswith("blk."):
            _, layer, part = base.split(".")
            if part not in _LAYER_NAMES:
                raise ConvertError(f"unexpected tensor {name}")
            if part in ("attn_q", "attn_k"):
                array = unpermute(array, n_head if part == "attn_q" else n_head_kv)
            out[f"model.layers.{layer}.{_LAYER_NAMES[part]}.{kind}"] = array
        elif base in _TOP_NAMES:
            out[f"{_TOP_NAMES[base]}.{kind}"] = array
        else:
            raise ConvertError(f"tensor {name} is not supported (rope scaling factors?)")
    return out


def pre_tokenizer(kind: str | None) -> Any:
    from tokenizers import Regex, pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if kind in (None, "default", "gpt2"):
        return byte_level
    if kind == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        byte_level])
    if kind in ("llama-bpe", "llama3", "qwen2"):
        regex = QWEN2_REGEX if kind == "qwen2" else LLAMA3_REGEX
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    raise ConvertError(f"tokenizer pre-type '{kind}' is not supported "
                       "(gpt2, default, smollm, llama-bpe, qwen2)")


def hf_tokenizer(model: GGUFModel) -> Any:
    """``tokenizers.Tokenizer`` equal to the GGUF's byte-level BPE vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    kind = model.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ConvertError(f"tokenizer model '{kind}' is not supported (byte-level BPE, gpt2, "
                           "only)")
    tokens: list[str] = model.get("tokenizer.ggml.tokens")
    types: list[int] = model.get("tokenizer.ggml.token_type") or [1] * len(tokens)
    merges = [tuple(m.split(" ", 1)) for m in model.get("tokenizer.ggml.merges") or []]
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges,
                                     fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizer(model.get("tokenizer.ggml.pre"))
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    control, user = 3, 4  # llama.cpp token types
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t, k in zip(tokens, types, strict=True) if k == control])
    tokenizer.add_tokens([AddedToken(t, normalized=False)
                          for t, k in zip(tokens, types, strict=True) if k == user])
    return tokenizer


def tokenizer_config(model: GGUFModel) -> dict[str, Any]:
    tokens = model.get("tokenizer.ggml.tokens")

    def token(key: str) -> str | None:
        index = model.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[index] if index is not None and 0 <= index < len(tokens) else None

    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": token("bos"),
              "eos_token": token("eos"), "unk_token": token("unknown"),
              "pad_token": token("padding"), "add_bos_token": bool(model.get(
                  "tokenizer.ggml.add_bos_token", False)),
              "clean_up_tokenization_spaces": False,
              "model_max_length": int(model.hp("context_length"))}
    if template := model.get("tokenizer.chat_template"):
        config["chat_template"] = template
    return {k: v for k, v in config.items() if v is not None}


def write_hf_checkpoint(gguf_path: Path, out: Path) -> None:
    """A Hugging Face Llama checkpoint folder equal to the GGUF model."""
    from safetensors.numpy import save_file

    model = GGUFModel(gguf_path)
    out.mkdir(parents=True, exist_ok=True)
    tensors = hf_tensors(model)
    config = hf_config(model, tied="lm_head.weight" not in tensors)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]}))
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    hf_tokenizer(model).save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(model), indent=2))


def convert(gguf_path: Path, out_dir: Path, *, precision: str = "int4",
            keep_hf: Path | None = None) -> None:
    """GGUF → Hugging Face checkpoint → onnxruntime-genai model folder, offline."""
    if not gguf_path.is_file():
        raise ConvertError(f"{gguf_path}: no such file")
    with tempfile.TemporaryDirectory(prefix="gguf-hf-") as tmp:
        hf_dir = keep_hf or Path(tmp) / "hf"
        write_hf_checkpoint(gguf_path, hf_dir)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        command = [sys.executable, "-m", BUILDER, "-i", str(hf_dir), "-o", str(out_dir),
                   "-p", precision, "-e", "cpu", "-c", str(Path(tmp) / "cache")]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["?"]
            raise ConvertError(f"the onnxruntime-genai builder failed: {tail[0]}")


def main(gguf_path: str, out_dir: str, precision: str = "int4",
         keep_hf: str | None = None) -> int:
    try:
        import gguf  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        print(f"gateway: convert-onnx needs {exc.name}: {NEEDS}", file=sys.stderr)
        return 1
    try:
        convert(Path(gguf_path), Path(out_dir), precision=precision,
                keep_hf=Path(keep_hf) if keep_hf else None)
    except ConvertError as exc:
        print(f"gateway: convert-onnx: {exc}", file=sys.stderr)
        return 1
    print(f"{out_dir}: onnxruntime-genai model ({precision}) from {gguf_path}")
    return 0
