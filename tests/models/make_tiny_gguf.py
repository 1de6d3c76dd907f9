"""A tiny random llama GGUF for fast tests: 2 layers, a 288-token byte-level BPE vocabulary.

The vocabulary is laid out like SmolLM2's (``tokenizer.ggml.model`` gpt2, pre-tokenizer
``smollm``, ChatML specials first, then the 256 byte tokens, then 29 merges), so the same code
paths (chat template, special tokens, the GGUF→ONNX converter) serve both.

The weights are random but shaped so that the text stays valid, printable UTF-8 and a
generation always runs to ``max_tokens``: hidden dimension 0 carries a constant (every
embedding has a large value there and no layer writes to it), and the output rows of the
special tokens and of every byte outside printable ASCII have a strongly negative weight on
that dimension, which works as a fixed output bias of about -80 logits.

    python tests/models/make_tiny_gguf.py OUT.gguf

Deterministic: the same file every time. Loads in about 10 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

N_EMBD, N_HEAD, N_HEAD_KV, N_FF, N_LAYER = 64, 4, 2, 128, 2
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BOS_ID, EOS_ID = 1, 2
MERGES = [("Ġ", "t"), ("Ġ", "a"), ("h", "e"), ("i", "n"), ("r", "e"), ("o", "n"), ("e", "r"),
          ("a", "t"), ("e", "n"), ("o", "r"), ("e", "s"), ("t", "i"), ("a", "n"), ("i", "s"),
          ("Ġ", "s"), ("Ġ", "w"), ("Ġ", "c"), ("Ġ", "o"), ("Ġ", "b"), ("Ġ", "m"), ("Ġ", "f"),
          ("Ġ", "p"), ("Ġ", "i"), ("a", "r"), ("l", "e"), ("s", "t"), ("n", "d"), ("o", "u"),
          ("Ġt", "he")]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CONSTANT = 30.0  # the value of hidden dimension 0 in every embedding
BAN_WEIGHT = -10.0  # output weight on dimension 0 of a banned token


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


def vocabulary() -> tuple[list[str], list[int], list[bool]]:
    """Tokens, their GGUF token types and whether each may be generated."""
    byte_chars = bytes_to_unicode()
    tokens = [*SPECIALS, *(byte_chars[b] for b in range(256)), *(a + b for a, b in MERGES)]
    types = [gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.NORMAL] * (256 + len(MERGES))
    allowed = [False] * len(SPECIALS) + [0x20 <= b <= 0x7E for b in range(256)] \
        + [True] * len(MERGES)
    assert len(tokens) == 288 and len(set(tokens)) == 288
    return tokens, [int(t) for t in types], allowed


def weights(allowed: list[bool], rng: np.random.Generator) -> dict[str, np.ndarray]:
    vocab, head_dim = len(allowed), N_EMBD // N_HEAD

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    embd = normal(vocab, N_EMBD)
    embd[:, 0] = CONSTANT
    output = normal(vocab, N_EMBD)
    output[:, 0] = [0.0 if ok else BAN_WEIGHT for ok in allowed]
    tensors = {"token_embd.weight": embd, "output_norm.weight": np.ones(N_EMBD, np.float32),
               "output.weight": output}
    for i in range(N_LAYER):
        attn_out = normal(N_EMBD, N_EMBD, scale=N_EMBD ** -0.5)
        ffn_down = normal(N_EMBD, N_FF, scale=N_FF ** -0.5)
        attn_out[0, :] = ffn_down[0, :] = 0.0  # nothing writes to the constant dimension
        tensors |= {
            f"blk.{i}.attn_norm.weight": np.ones(N_EMBD, np.float32),
            f"blk.{i}.attn_q.weight": normal(N_HEAD * head_dim, N_EMBD, scale=N_EMBD ** -0.5),
            f"blk.{i}.attn_k.weight": normal(N_HEAD_KV * head_dim, N_EMBD, scale=N_EMBD ** -0.5),
            f"blk.{i}.attn_v.weight": normal(N_HEAD_KV * head_dim, N_EMBD, scale=N_EMBD ** -0.5),
            f"blk.{i}.attn_output.weight": attn_out,
            f"blk.{i}.ffn_norm.weight": np.ones(N_EMBD, np.float32),
            f"blk.{i}.ffn_gate.weight": normal(N_FF, N_EMBD, scale=N_EMBD ** -0.5),
            f"blk.{i}.ffn_up.weight": normal(N_FF, N_EMBD, scale=N_EMBD ** -0.5),
            f"blk.{i}.ffn_down.weight": ffn_down,
        }
    return tensors


def make_tiny_gguf(path: Path, *, context_length: int = 32768, seed: int = 0) -> Path:
    """Write the model to ``path``. A long ``context_length`` lets tests run long
    generations (llama.cpp warns about a context longer than the trained one)."""
    tokens, types, allowed = vocabulary()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random-llama")
    writer.add_context_length(context_length)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([f"{a} {b}" for a, b in MERGES])
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(EOS_ID)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, tensor in weights(allowed, np.random.default_rng(seed)).items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_gguf.py OUT.gguf")
    print(make_tiny_gguf(Path(sys.argv[1])))
