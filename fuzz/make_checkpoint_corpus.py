#!/usr/bin/env python3
"""Writes the hostile checkpoints of issue 13 into fuzz/corpus/checkpoint/.

Each file targets fuzz_checkpoint's model ("w" F64 [2, 2], "b" F32 [3], an
Adam optimizer over both); the fuzzer loads odd-sized files with the
optimizer, even-sized ones without, so the header is padded to the parity
each case needs. Every file here was accepted by the loader before issue 13
(or hung it, or reported the wrong error) and must be rejected cleanly now,
except opt_complete, which must load.

    python3 fuzz/make_checkpoint_corpus.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "checkpoint")
RNG = "0000000000000001000000000000000200000000000000030000000000000004"


def tensor(name, dtype, shape, begin, end):
    dims = ",".join(str(d) for d in shape)
    return f'"{name}":{{"dtype":"{dtype}","shape":[{dims}],"data_offsets":[{begin},{end}]}}'


W = tensor("w", "F64", [2, 2], 0, 32)
B = tensor("b", "F32", [3], 32, 44)
MODEL = W + "," + B
DATA = struct.pack("<4d", 1, 2, 3, 4) + struct.pack("<3f", 5, 6, 7)


def meta(rng=RNG, spare="0 0", extra=""):
    return f'"__metadata__":{{"format":"lossgrad","rng":"{rng}","rng_spare":"{spare}"{extra}}}'


def adam_model(w_step=1, b_step=1):
    """Model, Adam state for w and b, and the data (44 + 64 + 24 + 16 bytes)."""
    t = [MODEL,
         tensor("__optim__.w.exp_avg", "F64", [2, 2], 44, 76),
         tensor("__optim__.w.exp_avg_sq", "F64", [2, 2], 76, 108),
         tensor("__optim__.b.exp_avg", "F32", [3], 108, 120),
         tensor("__optim__.b.exp_avg_sq", "F32", [3], 120, 132),
         tensor("__optim__.w.step", "I64", [], 132, 140),
         tensor("__optim__.b.step", "I64", [], 140, 148)]
    data = DATA + struct.pack("<8d", *([0.5] * 8)) + struct.pack("<6f", *([0.25] * 6))
    data += struct.pack("<2q", w_step, b_step)
    return ",".join(t), data


def write(name, json, data, with_optim, tail=b""):
    body = json.encode()
    size = 8 + len(body) + len(data) + len(tail)
    if size % 2 != with_optim:
        body += b" "  # space padding: legal, and sets the parity
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(body)) + body + data + tail)


def main():
    adam, adam_data = adam_model()
    adam_meta = ',"optim":"adam","optim_lr":"0.01"'
    write("opt_complete.safetensors", "{" + adam + "," + meta(extra=adam_meta) + "}",
          adam_data, True)
    cases = {
        # F8: values parsed whole, finite, in range
        "lr_nan": (adam, meta(extra=',"optim":"adam","optim_lr":"nan"'), adam_data, True),
        "lr_negative": (adam, meta(extra=',"optim":"adam","optim_lr":"-1"'), adam_data, True),
        "lr_trailing_text": (adam, meta(extra=',"optim":"adam","optim_lr":"0.1x"'), adam_data,
                             True),
        "step_negative": (adam, meta(extra=adam_meta), adam_model(-1)[1], True),
        "step_huge": (adam, meta(extra=adam_meta), adam_model(1, 2**62)[1], True),
        "format_other": (MODEL, '"__metadata__":{"format":"x","rng":"%s","rng_spare":"0 0"}'
                         % RNG, DATA, False),
        # F12
        "dup_name": (W + "," + W.replace("[0,32]", "[44,76]") + "," + B, meta(),
                     DATA + bytes(32), False),
        "dup_meta_key": (MODEL, meta(extra=',"rng":"%s"' % RNG), DATA, False),
        "nul_in_name": (MODEL.replace('"w"', '"w\\u0000x"'), meta(), DATA, False),
        "ctrl_in_name": (MODEL.replace('"w"', '"w\x01"'), meta(), DATA, False),
        "zero_rng": (MODEL, meta(rng="0" * 64), DATA, False),
        "signed_rng": (MODEL, meta(rng="+" + RNG[1:]), DATA, False),
        "spaced_rng": (MODEL, meta(rng=" " + RNG[1:]), DATA, False),
        "spare_nan": (MODEL, meta(spare="1 nan"), DATA, False),
        "spare_inf": (MODEL, meta(spare="1 inf"), DATA, False),
        # messages: the file holds another optimizer's state
        "sgd_state_for_adam": (MODEL + "," + tensor("__optim__.w.step", "I64", [], 44, 52) + ","
                               + tensor("__optim__.b.step", "I64", [], 52, 60),
                               meta(extra=',"optim":"sgd","optim_lr":"0.1"'),
                               DATA + struct.pack("<2q", 1, 1), True),
        "step_missing": (MODEL, meta(extra=adam_meta), DATA, True),
        # F9: data must tile exactly
        "gap": (W + "," + B.replace("[32,44]", "[36,48]"), meta(), DATA + bytes(4), False),
    }
    for name, (tensors, m, data, with_optim) in cases.items():
        write(name + ".safetensors", "{" + tensors + "," + m + "}", data, with_optim)
    # F12: bytes other than spaces after the JSON object, inside the header
    write("garbage_after_json.safetensors", "{" + MODEL + "," + meta() + "}  x", DATA, False)
    # F9: a tail after the data
    write("tail.safetensors", "{" + MODEL + "," + meta() + "}", DATA, False, tail=bytes(64))


if __name__ == "__main__":
    main()
