#!/usr/bin/python3
"""Write tiny random-weight sherpa-onnx models for koel's tests.

The weights are random: the models decode garbage text. They exist to
exercise koel's loader, streaming, resampling, hotword and error paths
through the real sherpa-onnx library, never to measure accuracy.

    sherpa_tiny_model.py KIND[,VARIANT]=DIR ...

KIND is online (a streaming LSTM transducer: encoder.onnx, decoder.onnx,
joiner.onnx, tokens.txt, bpe.vocab), offline (a TDNN-CTC model.onnx and
tokens.txt) or offline-transducer (a non-streaming transducer, with
bpe.vocab). Variants, to test error handling: ok (default), no-metadata
(the encoder or model lacks sherpa's metadata), wrong-joiner (the joiner
expects another width than the encoder produces), wrong-vocab (the output
is wider than tokens.txt), runtime-mismatch (like wrong-joiner, but the
widths are symbolic in the graph, so only running the joiner shows it).

Needs Debian's python3-onnx and python3-numpy.
"""

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FEATURE_DIM = 80
JOINER_DIM = 16
NUM_LAYERS = 1
D_MODEL = 8
RNN_HIDDEN = 8
CONTEXT_SIZE = 2
CHUNK = 16  # feature frames per encoder call (T and decode_chunk_len)
SUBSAMPLE = 4

# A word-piece inventory in the style of icefall's BPE models: "▁" starts a
# word. Upper case, like the LibriSpeech and GigaSpeech models.
PIECES = [
    "<blk>", "<sos/eos>", "<unk>", "▁", "▁THE", "▁OPEN", "▁SUNDAY", "▁DELIVER",
    "▁CHENNAI", "▁PAY", "▁PAYTM", "▁PHONE", "▁SCREEN", "▁YES", "▁NO", "▁WHEN",
    "▁ARE", "▁YOU", "▁DO", "▁TO", "▁CAN", "▁I", "▁WITH", "▁MY", "S", "ED",
    "ING", "E", "A", "O", "N", "T", "R", "L", "D", "P", "M", "C", "H", "Y",
]

SEED = 20261202
rng = np.random.default_rng(SEED)
OPSET = [helper.make_opsetid("", 13)]


def const(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name=name)


def rand(*shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)


def save(graph, path, meta):
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="koel-test")
    model.ir_version = 7
    for k, v in meta.items():
        p = model.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.checker.check_model(model)
    onnx.save(model, path)


def write_tokens(d, n):
    with open(os.path.join(d, "tokens.txt"), "w", encoding="utf-8") as f:
        for i, p in enumerate(PIECES[:n]):
            f.write(f"{p} {i}\n")


def write_bpe_vocab(d, n):
    # sentencepiece's vocabulary export: piece TAB score. Longer pieces get
    # higher scores so whole words win.
    with open(os.path.join(d, "bpe.vocab"), "w", encoding="utf-8") as f:
        for i, p in enumerate(PIECES[:n]):
            score = 0.0 if i < 3 else -10.0 + len(p)
            f.write(f"{p}\t{score}\n")


def online(d, variant):
    global rng
    rng = np.random.default_rng(SEED)
    vocab = len(PIECES)
    # Encoder: x (N, CHUNK, 80) -> reshape (N, CHUNK/4, 320) -> matmul ->
    # tanh -> (N, CHUNK/4, J); states h, c decay.
    enc_in = SUBSAMPLE * FEATURE_DIM
    enc_out_dim = JOINER_DIM
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["xr"]),
        helper.make_node("MatMul", ["xr", "w"], ["xm"]),
        helper.make_node("Tanh", ["xm"], ["encoder_out"]),
        helper.make_node("Mul", ["h", "decay"], ["next_h"]),
        helper.make_node("Mul", ["c", "decay"], ["next_c"]),
    ]
    graph = helper.make_graph(
        nodes, "encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", CHUNK, FEATURE_DIM]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [NUM_LAYERS, "N", D_MODEL]),
         helper.make_tensor_value_info("c", TensorProto.FLOAT, [NUM_LAYERS, "N", RNN_HIDDEN])],
        [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", CHUNK // SUBSAMPLE, enc_out_dim]),
         helper.make_tensor_value_info("next_h", TensorProto.FLOAT, [NUM_LAYERS, "N", D_MODEL]),
         helper.make_tensor_value_info("next_c", TensorProto.FLOAT, [NUM_LAYERS, "N", RNN_HIDDEN])],
        [const("shape", np.array([0, CHUNK // SUBSAMPLE, enc_in], dtype=np.int64)),
         const("w", rand(enc_in, enc_out_dim) * 0.05),
         const("decay", np.array(0.9, dtype=np.float32))],
    )
    meta = {
        "model_type": "lstm", "num_encoder_layers": NUM_LAYERS, "T": CHUNK,
        "decode_chunk_len": CHUNK, "rnn_hidden_size": RNN_HIDDEN, "d_model": D_MODEL,
    }
    if variant == "no-metadata":
        meta = {"model_type": "lstm"}
    save(graph, os.path.join(d, "encoder.onnx"), meta)

    # Decoder: y (N, CONTEXT) int64 -> embedding -> mean over context -> (N, J).
    graph = helper.make_graph(
        [helper.make_node("Gather", ["emb", "y"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["decoder_out"], axes=[1], keepdims=0)],
        "decoder",
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", CONTEXT_SIZE])],
        [helper.make_tensor_value_info("decoder_out", TensorProto.FLOAT, ["N", JOINER_DIM])],
        [const("emb", rand(vocab, JOINER_DIM))],
    )
    save(graph, os.path.join(d, "decoder.onnx"), {"vocab_size": vocab, "context_size": CONTEXT_SIZE})

    # Joiner: tanh(enc + dec) @ w -> logits (N, vocab). The blank gets a
    # bias so most frames emit nothing, as in a trained model.
    jin = JOINER_DIM + (3 if variant in ("wrong-joiner", "runtime-mismatch") else 0)
    jout = vocab + (5 if variant == "wrong-vocab" else 0)
    # runtime-mismatch declares symbolic widths, so the mismatch shows
    # only when onnxruntime runs the joiner.
    din = "J" if variant == "runtime-mismatch" else jin
    dout = "V" if variant == "runtime-mismatch" else jout
    bias = np.zeros(jout, dtype=np.float32)
    bias[0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Add", ["encoder_out", "decoder_out"], ["s"]),
         helper.make_node("Tanh", ["s"], ["t"]),
         helper.make_node("MatMul", ["t", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["logit"])],
        "joiner",
        [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", din]),
         helper.make_tensor_value_info("decoder_out", TensorProto.FLOAT, ["N", din])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", dout])],
        [const("w", rand(jin, jout)), const("b", bias)],
    )
    save(graph, os.path.join(d, "joiner.onnx"), {})
    write_tokens(d, vocab)
    write_bpe_vocab(d, vocab)


def offline_transducer(d, variant):
    """An offline transducer: the encoder takes (x, x_lens) and returns
    (encoder_out, encoder_out_lens), no subsampling; decoder and joiner as
    the streaming model's."""
    global rng
    rng = np.random.default_rng(SEED + 2)
    vocab = len(PIECES)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xm"]),
         helper.make_node("Tanh", ["xm"], ["encoder_out"]),
         helper.make_node("Identity", ["x_lens"], ["encoder_out_lens"])],
        "encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", FEATURE_DIM]),
         helper.make_tensor_value_info("x_lens", TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", "T", JOINER_DIM]),
         helper.make_tensor_value_info("encoder_out_lens", TensorProto.INT64, ["N"])],
        [const("w", rand(FEATURE_DIM, JOINER_DIM) * 0.05)],
    )
    save(graph, os.path.join(d, "encoder.onnx"), {"model_type": "zipformer"})
    graph = helper.make_graph(
        [helper.make_node("Gather", ["emb", "y"], ["e"]),
         helper.make_node("ReduceMean", ["e"], ["decoder_out"], axes=[1], keepdims=0)],
        "decoder",
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["N", CONTEXT_SIZE])],
        [helper.make_tensor_value_info("decoder_out", TensorProto.FLOAT, ["N", JOINER_DIM])],
        [const("emb", rand(vocab, JOINER_DIM))],
    )
    save(graph, os.path.join(d, "decoder.onnx"), {"vocab_size": vocab, "context_size": CONTEXT_SIZE})
    bias = np.zeros(vocab, dtype=np.float32)
    bias[0] = 0.5
    graph = helper.make_graph(
        [helper.make_node("Add", ["encoder_out", "decoder_out"], ["s"]),
         helper.make_node("Tanh", ["s"], ["t"]),
         helper.make_node("MatMul", ["t", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["logit"])],
        "joiner",
        [helper.make_tensor_value_info("encoder_out", TensorProto.FLOAT, ["N", JOINER_DIM]),
         helper.make_tensor_value_info("decoder_out", TensorProto.FLOAT, ["N", JOINER_DIM])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", vocab])],
        [const("w", rand(JOINER_DIM, vocab)), const("b", bias)],
    )
    save(graph, os.path.join(d, "joiner.onnx"), {})
    write_tokens(d, vocab)
    write_bpe_vocab(d, vocab)


def offline(d, variant):
    global rng
    rng = np.random.default_rng(SEED + 1)
    vocab = len(PIECES)
    jout = vocab + (5 if variant == "wrong-vocab" else 0)
    bias = np.zeros(jout, dtype=np.float32)
    bias[0] = 0.5
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["a"]),
         helper.make_node("LogSoftmax", ["a"], ["log_probs"], axis=-1)],
        "tdnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", FEATURE_DIM])],
        [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["N", "T", jout])],
        [const("w", rand(FEATURE_DIM, jout) * 0.05), const("b", bias)],
    )
    meta = {"model_type": "tdnn", "vocab_size": jout}
    if variant == "no-metadata":
        meta = {}
    save(graph, os.path.join(d, "model.onnx"), meta)
    write_tokens(d, vocab)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("spec", nargs="+", help="KIND[,VARIANT]=DIR")
    a = ap.parse_args()
    for spec in a.spec:
        what, _, d = spec.partition("=")
        kind, _, variant = what.partition(",")
        variant = variant or "ok"
        if kind not in ("online", "offline", "offline-transducer") or not d or variant not in (
                "ok", "no-metadata", "wrong-joiner", "wrong-vocab", "runtime-mismatch"):
            ap.error(f"bad spec {spec!r}")
        os.makedirs(d, exist_ok=True)
        {"online": online, "offline": offline, "offline-transducer": offline_transducer}[kind](d, variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
