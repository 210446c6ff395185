#!/usr/bin/env python3
"""Weights between PyTorch's nn.LSTM / nn.GRU / nn.RNN and recur's parameter names.

PyTorch stacks the gates of a layer in one matrix; recur keeps one matrix per gate,
used as x @ W^T, so each recur matrix is a row block of PyTorch's, in PyTorch's
gate order:

    LSTM  weight_ih_l{k} [4H, I] = W_xi; W_xf; W_xg; W_xo    weight_hh_l{k} likewise W_h*
          b_i = bias_ih[0:H] + bias_hh[0:H], and so on for f, g, o (one bias per gate)
    GRU   weight_ih_l{k} [3H, I] = W_xr; W_xz; W_xn          weight_hh_l{k} likewise W_h*
          b_r = b_ir + b_hr, b_z = b_iz + b_hz, b_xn = b_in, b_hn = b_hn
          (recur's rc_cell_gru(H, RC_GRU_RESET_AFTER), the form PyTorch computes)
    RNN   weight_ih_l{k} [H, I] = W_xh, weight_hh_l{k} = W_hh, b_h = bias_ih + bias_hh

Layer k of a model is prefixed "l{k}." (its reverse direction, PyTorch's
"_reverse" keys, "l{k}r."); a bare rc_unroll with prefix NULL uses no prefix
(bare=True). An nn.Embedding weight [V, E] is recur's "embed" and an nn.Linear
head is "out.W" [O, F] / "out.b" [O]: same layouts. Going back to PyTorch, a summed
bias goes to bias_ih and bias_hh gets zeros, which computes the same function.

The conversion functions take and return plain dicts of arrays (numpy, or torch
tensors, which are detached to numpy) and keep the dtype; torch is imported only to
read or write .pt files. A folder of recur parameters holds one "<name>.npy" per
parameter (float32), as rc_model_save_npy / rc_model_load_npy read and write them.

    python3 tools/recur_torch.py to-recur model.pt OUTDIR [--bare] [--embed M] [--out M]
    python3 tools/recur_torch.py from-recur INDIR model.pt [--cell lstm|gru|rnn]
            [--layers N] [--bidirectional] [--bare] [--rnn-prefix P] [--embed M] [--out M]
    python3 tools/recur_torch.py selftest

model.pt is a state_dict saved with torch.save (a whole saved nn.Module is accepted
too). The recurrent keys may carry a module prefix ("rnn.weight_ih_l0"); M names the
embedding / linear modules ("encoder" for encoder.weight); to-recur finds them when
they are the only other 2-D weights (an embedding has no bias, a linear layer does).
"""
import argparse
import os
import re
import sys

import numpy as np

GATES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n"), "rnn": ("h",)}
_RNN_KEY = re.compile(r"^(?P<mod>.*?)(?P<kind>weight|bias)_(?P<side>ih|hh)_l(?P<k>\d+)(?P<rev>_reverse)?$")


def _np(v):
    """A numpy array of a numpy array, list or (CPU) torch tensor."""
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def layer_prefix(k, reverse=False, bare=False):
    """recur's name prefix of layer k ("l0.", "l0r."), or "" for a bare unroll."""
    if bare:
        if k != 0 or reverse:
            raise ValueError("bare (unprefixed) names exist only for one unidirectional layer")
        return ""
    return "l%d%s." % (k, "r" if reverse else "")


def cell_of_sizes(rows_ih, hidden):
    """The cell kind from weight_ih's row count: 4H lstm, 3H gru, H rnn."""
    kinds = {4: "lstm", 3: "gru", 1: "rnn"}
    if rows_ih % hidden or rows_ih // hidden not in kinds:
        raise ValueError("weight_ih has %d rows for hidden %d: not an LSTM, GRU or RNN" % (rows_ih, hidden))
    return kinds[rows_ih // hidden]


def layer_to_recur(cell, w_ih, w_hh, b_ih=None, b_hh=None, prefix="", grad=False):
    """One direction of one PyTorch layer as recur parameters {prefix+name: array}.

    Missing biases (bias=False) are zeros. With grad=True the arguments are gradients
    of those tensors: a summed recur bias then takes bias_ih's gradient (it equals
    bias_hh's, checked) instead of the sum of the two."""
    w_ih, w_hh = _np(w_ih), _np(w_hh)
    H = w_hh.shape[1]
    gates = GATES[cell]
    if w_ih.shape[0] != len(gates) * H or w_hh.shape != (len(gates) * H, H):
        raise ValueError("%s layer %s: weight_ih %s / weight_hh %s do not fit hidden %d"
                         % (cell, prefix or "(bare)", w_ih.shape, w_hh.shape, H))
    zeros = np.zeros(len(gates) * H, dtype=w_ih.dtype)
    b_ih = zeros if b_ih is None else _np(b_ih)
    b_hh = zeros if b_hh is None else _np(b_hh)
    p = {}
    for j, gate in enumerate(gates):
        rows = slice(j * H, (j + 1) * H)
        p[prefix + "W_x" + gate] = w_ih[rows].copy()
        p[prefix + "W_h" + gate] = w_hh[rows].copy()
        if cell == "gru" and gate == "n":      # b_hn sits inside r * (W_hn h + b_hn)
            p[prefix + "b_xn"], p[prefix + "b_hn"] = b_ih[rows].copy(), b_hh[rows].copy()
        elif grad:
            if not np.allclose(b_ih[rows], b_hh[rows], rtol=1e-5, atol=1e-7):
                raise ValueError("gradients of bias_ih and bias_hh differ for gate " + gate)
            p[prefix + "b_" + gate] = b_ih[rows].copy()
        else:
            p[prefix + "b_" + gate] = b_ih[rows] + b_hh[rows]
    return p


def layer_from_recur(cell, params, prefix=""):
    """(weight_ih, weight_hh, bias_ih, bias_hh) of one direction of a layer from recur
    parameters; reads only prefix+<cell parameter> entries (KeyError when one lacks)."""
    def get(name):
        if prefix + name not in params:
            hint = " (names have no prefix: pass --bare)" if prefix and name in params else ""
            raise KeyError("recur parameter '%s' is missing (a %s layer needs it)%s" % (prefix + name, cell, hint))
        return _np(params[prefix + name])
    gates = GATES[cell]
    w_ih = np.concatenate([get("W_x" + g) for g in gates])
    w_hh = np.concatenate([get("W_h" + g) for g in gates])
    if cell == "gru":
        b_ih = np.concatenate([get("b_r"), get("b_z"), get("b_xn")])
        b_hh = np.concatenate([np.zeros_like(get("b_r")), np.zeros_like(get("b_z")), get("b_hn")])
    else:
        b_ih = np.concatenate([get("b_" + g) for g in gates])
        b_hh = np.zeros_like(b_ih)
    return w_ih, w_hh, b_ih, b_hh


def _modules(keys):
    """{module: set of 'weight'/'bias'} of keys ending in .weight / .bias."""
    mods = {}
    for key in keys:
        mod, _, leaf = key.rpartition(".")
        if leaf in ("weight", "bias"):
            mods.setdefault(mod, set()).add(leaf)
    return mods


def torch_to_recur(sd, bare=False, embed=None, out=None, grad=False):
    """A PyTorch state_dict (or a dict of their .grad, grad=True) as recur parameters.

    Returns (params, info): info has 'cell', 'layers', 'bidirectional', 'rnn_prefix'.
    embed / out name the nn.Embedding / nn.Linear modules; None finds them by shape
    (the one remaining weight without a bias / with a bias). Unknown keys are an error."""
    sd = {k: _np(v) for k, v in sd.items()}
    rnn = {}
    mods = set()
    for key in sd:
        m = _RNN_KEY.match(key)
        if m:
            mods.add(m["mod"])
            rnn[(int(m["k"]), bool(m["rev"]), m["kind"] + "_" + m["side"])] = sd[key]
        elif re.search(r"(^|\.)weight_hr_l\d+", key):
            raise ValueError("LSTM projections (proj_size, key %s) have no recur counterpart" % key)
    if not rnn:
        raise ValueError("no weight_ih_l<k> keys: not an nn.LSTM / nn.GRU / nn.RNN state_dict")
    if len(mods) != 1:
        raise ValueError("recurrent keys under several modules %s: convert one at a time" % sorted(mods))
    mod = mods.pop()
    layers = 1 + max(k for k, _, _ in rnn)
    bidir = any(rev for _, rev, _ in rnn)
    if bare and (layers > 1 or bidir):
        raise ValueError("bare names fit one unidirectional layer; this has %d layer(s)%s"
                         % (layers, ", bidirectional" if bidir else ""))
    if (0, False, "weight_ih") not in rnn or (0, False, "weight_hh") not in rnn:
        raise ValueError("no weight_ih_l0 / weight_hh_l0")
    cell = cell_of_sizes(rnn[(0, False, "weight_ih")].shape[0], rnn[(0, False, "weight_hh")].shape[1])
    params = {}
    for k in range(layers):
        for rev in ((False, True) if bidir else (False,)):
            if (k, rev, "weight_ih") not in rnn or (k, rev, "weight_hh") not in rnn:
                raise ValueError("layer %d%s lacks weight_ih or weight_hh" % (k, " reverse" if rev else ""))
            params.update(layer_to_recur(cell, rnn[(k, rev, "weight_ih")], rnn[(k, rev, "weight_hh")],
                                         rnn.get((k, rev, "bias_ih")), rnn.get((k, rev, "bias_hh")),
                                         layer_prefix(k, rev, bare), grad))
    rest = {k: v for k, v in sd.items() if not _RNN_KEY.match(k)}
    mods = _modules(rest)
    if embed is None:
        cands = [m for m, leaves in mods.items() if leaves == {"weight"} and rest[m + ".weight"].ndim == 2]
        embed = cands[0] if len(cands) == 1 else None
    if out is None:
        cands = [m for m, leaves in mods.items() if leaves == {"weight", "bias"} and rest[m + ".weight"].ndim == 2]
        out = cands[0] if len(cands) == 1 else None
    for m, names in ((embed, {"weight": "embed"}), (out, {"weight": "out.W", "bias": "out.b"})):
        if m is None:
            continue
        for leaf, name in names.items():
            key = (m + "." if m else "") + leaf
            if key not in rest:
                raise ValueError("no key '%s' in the state_dict" % key)
            params[name] = rest.pop(key)
    if rest:
        raise ValueError("keys with no recur counterpart: %s (name the embedding / linear "
                         "modules with --embed / --out)" % ", ".join(sorted(rest)))
    return params, {"cell": cell, "layers": layers, "bidirectional": bidir, "rnn_prefix": mod}


def recur_to_torch(params, cell=None, layers=None, bidirectional=None, bare=False,
                   rnn_prefix="", embed="embed", out="out"):
    """recur parameters as a PyTorch state_dict of numpy arrays (keys rnn_prefix +
    "weight_ih_l0", ..., embed + ".weight", out + ".weight" / ".bias").

    cell, layers and bidirectional are read from the names when None. Parameters with
    no PyTorch counterpart (reset-before GRU's b_n, peepholes, learned initial states)
    are an error."""
    params = {k: _np(v) for k, v in params.items()}
    if cell is None:
        found = [c for c, g in GATES.items() if any(re.match(r"^(l\d+r?\.)?W_x%s$" % g[0], k) for k in params)]
        if len(found) != 1:
            raise ValueError("cannot tell the cell from the names; give it (lstm, gru, rnn)")
        cell = found[0]
    if cell not in GATES:
        raise ValueError("unknown cell '%s' (lstm, gru, rnn)" % cell)
    if layers is None:
        ks = [int(m[1]) for m in (re.match(r"^l(\d+)r?\.", k) for k in params) if m]
        layers = 1 + max(ks) if ks else 1
    if bidirectional is None:
        bidirectional = any(re.match(r"^l\d+r\.", k) for k in params)
    sd, used = {}, set()
    for k in range(layers):
        for rev in ((False, True) if bidirectional else (False,)):
            prefix = layer_prefix(k, rev, bare)
            suffix = "_l%d%s" % (k, "_reverse" if rev else "")
            w_ih, w_hh, b_ih, b_hh = layer_from_recur(cell, params, prefix)
            for name, v in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
                sd[rnn_prefix + name + suffix] = v
            used.update(prefix + n for n in layer_to_recur(cell, w_ih, w_hh, b_ih, b_hh))
    for name, key in (("embed", embed + ".weight"), ("out.W", out + ".weight"), ("out.b", out + ".bias")):
        if name in params:
            sd[key] = params[name]
            used.add(name)
    extra = sorted(set(params) - used)
    if extra:
        why = {"b_n": "a reset-before GRU (rc_cell_gru(H, RC_GRU_RESET_BEFORE)), which PyTorch does not compute",
               "p_i": "LSTM peepholes", "p_f": "LSTM peepholes", "p_o": "LSTM peepholes",
               "init_h": "learned initial states", "init_c": "learned initial states"}
        hints = sorted({why[n.rpartition(".")[2]] for n in extra if n.rpartition(".")[2] in why})
        raise ValueError("recur parameters with no PyTorch counterpart here (check --cell, --layers, "
                         "--bidirectional, --bare): %s%s" % (", ".join(extra), "".join("; " + h for h in hints)))
    return sd


def read_npy_dir(path):
    """{name: array} of every <name>.npy in a folder."""
    return {f[:-4]: np.load(os.path.join(path, f)) for f in sorted(os.listdir(path)) if f.endswith(".npy")}


def write_npy_dir(path, params):
    """Writes each parameter to path/<name>.npy as float32 (creates the folder)."""
    os.makedirs(path, exist_ok=True)
    for name, v in params.items():
        np.save(os.path.join(path, name + ".npy"), np.ascontiguousarray(_np(v), dtype=np.float32))


def load_state_dict(path):
    """A state_dict from a .pt file (a saved module gives its state_dict)."""
    import torch
    obj = torch.load(path, map_location="cpu")
    return obj.state_dict() if hasattr(obj, "state_dict") else dict(obj)


def save_state_dict(path, sd):
    """Saves {key: array} as a float32 torch state_dict."""
    import collections
    import torch
    torch.save(collections.OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)))
                                       for k, v in sd.items()), path)


# ---- a round-trip self-check (run by hand; needs torch) ---------------------------

def _recur_forward(cell, params, prefix, x, h0, c0=None):
    """recur's step equations (cells/lstm.c, cells/gru.c, cells/rnn.c with tanh) in
    numpy over x [T, B, I]: an independent check of the mapping's meaning."""
    sig = lambda a: 1 / (1 + np.exp(-a))
    lin = lambda n, v: v @ params[prefix + n].T
    h, c, outs = h0, c0, []
    for xt in x:
        gate = lambda g: lin("W_x" + g, xt) + lin("W_h" + g, h) + params[prefix + "b_" + g]
        if cell == "lstm":
            c = sig(gate("f")) * c + sig(gate("i")) * np.tanh(gate("g"))
            h = sig(gate("o")) * np.tanh(c)
        elif cell == "gru":
            r, z = sig(gate("r")), sig(gate("z"))
            n = np.tanh(lin("W_xn", xt) + params[prefix + "b_xn"] + r * (lin("W_hn", h) + params[prefix + "b_hn"]))
            h = n + z * (h - n)
        else:
            h = np.tanh(gate("h"))
        outs.append(h)
    return np.stack(outs), h, c


def selftest():
    import tempfile
    import torch
    torch.manual_seed(0)
    worst = 0.0
    for cell, Cls in (("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU), ("rnn", torch.nn.RNN)):
        for layers, bidir in ((1, False), (2, True)):
            net = torch.nn.ModuleDict({"emb": torch.nn.Embedding(7, 3),
                                       "rnn": Cls(3, 4, num_layers=layers, bidirectional=bidir),
                                       "fc": torch.nn.Linear(8 if bidir else 4, 2)}).double()
            with tempfile.TemporaryDirectory() as tmp:
                pt, rdir, pt2 = (os.path.join(tmp, n) for n in ("a.pt", "recur", "b.pt"))
                torch.save(net.state_dict(), pt)
                main(["to-recur", pt, rdir])
                main(["from-recur", rdir, pt2, "--cell", cell, "--layers", str(layers), "--rnn-prefix", "rnn.",
                      "--embed", "emb", "--out", "fc"] + (["--bidirectional"] if bidir else []))
                p32 = read_npy_dir(rdir)
                net2 = Cls(3, 4, num_layers=layers, bidirectional=bidir)
                sd2 = load_state_dict(pt2)
                net2.load_state_dict({k[4:]: v for k, v in sd2.items() if k.startswith("rnn.")})
            params, info = torch_to_recur(net.state_dict())
            assert info == {"cell": cell, "layers": layers, "bidirectional": bidir, "rnn_prefix": "rnn."}, info
            assert set(params) == set(p32) and all(np.allclose(params[k], p32[k], atol=1e-7) for k in params)
            back, _ = torch_to_recur(recur_to_torch(params, rnn_prefix="rnn.", embed="emb", out="fc"))
            assert all(np.array_equal(params[k], back[k]) for k in params), "recur -> torch -> recur changed"
            x = torch.randn(5, 2, 3, dtype=torch.float64)
            with torch.no_grad():
                y1 = net["rnn"](x)[0].numpy()
                y2 = net2(x.float())[0].double().numpy()
            worst = max(worst, np.abs(y1 - y2).max())
            assert np.allclose(y1, y2, atol=1e-5), "reloaded module computes another function"
            if layers == 1:
                h0 = np.zeros((2, 4))
                y3 = _recur_forward(cell, params, "l0.", x.numpy(), h0, h0)[0]
                assert np.allclose(y1, y3, atol=1e-12), "recur's equations disagree with " + Cls.__name__
            print("ok  %-4s layers=%d bidirectional=%d  %d recur tensors" % (cell, layers, bidir, len(params)))
    print("selftest passed (max |torch - reloaded float32| = %.2g)" % worst)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("to-recur", help="state_dict .pt -> folder of <name>.npy")
    a.add_argument("model")
    a.add_argument("outdir")
    a.add_argument("--bare", action="store_true", help="no 'l0.' prefix (rc_unroll with prefix NULL)")
    a.add_argument("--embed", help="nn.Embedding module name (default: found by shape)")
    a.add_argument("--out", help="nn.Linear head module name (default: found by shape)")
    b = sub.add_parser("from-recur", help="folder of <name>.npy -> state_dict .pt")
    b.add_argument("indir")
    b.add_argument("model")
    b.add_argument("--cell", choices=sorted(GATES), help="default: read from the names")
    b.add_argument("--layers", type=int, help="default: read from the names")
    b.add_argument("--bidirectional", action="store_true")
    b.add_argument("--bare", action="store_true", help="names have no 'l0.' prefix")
    b.add_argument("--rnn-prefix", default="", help="key prefix of the recurrent module, e.g. 'rnn.'")
    b.add_argument("--embed", default="embed", help="module name for 'embed' (default: embed)")
    b.add_argument("--out", default="out", help="module name for 'out.W', 'out.b' (default: out)")
    sub.add_parser("selftest", help="round trips and a numpy check of the mapping (needs torch)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "to-recur":
            params, info = torch_to_recur(load_state_dict(args.model), args.bare, args.embed, args.out)
            write_npy_dir(args.outdir, params)
            print("%s: %d layer(s)%s %s -> %d tensors in %s" % (args.model, info["layers"],
                  " bidirectional" if info["bidirectional"] else "", info["cell"], len(params), args.outdir))
        elif args.cmd == "from-recur":
            sd = recur_to_torch(read_npy_dir(args.indir), args.cell, args.layers, args.bidirectional or None,
                                args.bare, args.rnn_prefix, args.embed, args.out)
            save_state_dict(args.model, sd)
            print("%s -> %d tensors in %s" % (args.indir, len(sd), args.model))
        else:
            selftest()
    except (ValueError, KeyError, OSError) as e:
        sys.exit("recur_torch: %s" % (e.args[0] if isinstance(e, KeyError) else e))


if __name__ == "__main__":
    main()
