#!/usr/bin/env python3
"""Train the seed paper's demo network on the banknote-authentication data set and export it.

Run with Debian's interpreter (it has python3-torch):
    /usr/bin/python3 examples/banknote/train.py ../shared/data/banknote_authentication.csv

Writes, beside this script:
  banknote.onnx              4-16-2 MLP (ReLU, softmax); feature standardization is part of the
                             graph (Sub/Div nodes), so clients send raw features
  banknote.neuralbond.json   the same network in BondMachine's format, written by
                             `fpgaserve convert` (our exporter)
  banknote.meta.json         feature names, mean/std, split, seed, accuracies
  reference_outputs.json     inputs and PyTorch's outputs (float32 and float64) for tests
"""
import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import torch

SEED = 20231123
HIDDEN = 16
EPOCHS = 400
LEARNING_RATE = 0.02


class BanknoteMlp(torch.nn.Module):
    """Standardize -> Linear(4,16) -> ReLU -> Linear(16,2) -> Softmax."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.hidden = torch.nn.Linear(len(mean), HIDDEN)
        self.out = torch.nn.Linear(HIDDEN, 2)

    def logits(self, x):
        x = (x - self.mean) / self.std
        return self.out(torch.relu(self.hidden(x)))

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=-1)


def load_csv(path):
    if not os.path.exists(path):
        sys.exit(f"train.py: data set not found: {path} (expected ../shared/data/banknote_authentication.csv)")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header[-1] != "class":
        sys.exit(f"train.py: {path}: expected the last column to be 'class', found {header[-1]!r}")
    data = np.array([[float(v) for v in r] for r in body if r], dtype=np.float64)
    return header[:-1], data[:, :-1], data[:, -1].astype(np.int64)


def main():
    here = pathlib.Path(__file__).resolve().parent
    root = here.parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", help="banknote_authentication.csv")
    ap.add_argument("--out-dir", default=str(here))
    ap.add_argument("--fpgaserve", default=str(root / "build" / "fpgaserve"),
                    help="fpgaserve binary used to export the neuralbond file")
    args = ap.parse_args()
    out = pathlib.Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)

    names, x, y = load_csv(args.csv)
    order = rng.permutation(len(x))
    n_train = int(0.8 * len(x))
    train_idx, test_idx = order[:n_train], order[n_train:]
    mean = x[train_idx].mean(axis=0)
    std = x[train_idx].std(axis=0)

    model = BanknoteMlp(mean, std)
    xt = torch.tensor(x[train_idx], dtype=torch.float32)
    yt = torch.tensor(y[train_idx])
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        opt.zero_grad()
        loss = loss_fn(model.logits(xt), yt)
        loss.backward()
        opt.step()
    model.eval()

    with torch.no_grad():
        all_probs = model(torch.tensor(x, dtype=torch.float32)).numpy()
    pred = all_probs.argmax(axis=1)
    acc_all = float((pred == y).mean())
    acc_test = float((pred[test_idx] == y[test_idx]).mean())
    print(f"train.py: final loss {loss.item():.6f}; accuracy test {acc_test:.4f}, all {acc_all:.4f}")

    onnx_path = out / "banknote.onnx"
    torch.onnx.export(model, torch.zeros(1, len(names)), str(onnx_path),
                      input_names=["input"], output_names=["probabilities"],
                      dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}},
                      opset_version=13, do_constant_folding=True)

    # Reference outputs for the tests: 32 fixed rows, PyTorch in float32 and float64.
    ref_idx = np.sort(rng.choice(len(x), size=32, replace=False))
    ref_x = x[ref_idx]
    with torch.no_grad():
        p32 = model(torch.tensor(ref_x, dtype=torch.float32)).numpy().astype(np.float64)
        p64 = model.double()(torch.tensor(ref_x, dtype=torch.float64)).numpy()
    (out / "reference_outputs.json").write_text(json.dumps({
        "source": "PyTorch " + torch.__version__ + ", examples/banknote/train.py",
        "features": names,
        "inputs": ref_x.tolist(),
        "labels": y[ref_idx].tolist(),
        "torch_float32": p32.tolist(),
        "torch_float64": p64.tolist(),
    }, indent=1) + "\n")

    (out / "banknote.meta.json").write_text(json.dumps({
        "model": "banknote.onnx",
        "features": names,
        "label_column": "class",
        "classes": ["genuine", "forged"],
        "standardization": {"mean": mean.tolist(), "std": std.tolist(),
                            "note": "inside the model: (x - mean) / std before the first layer"},
        "architecture": f"{len(names)}-{HIDDEN}-2 MLP, ReLU, softmax",
        "seed": SEED, "epochs": EPOCHS, "learning_rate": LEARNING_RATE,
        "split": {"train": int(n_train), "test": int(len(x) - n_train)},
        "accuracy": {"test": acc_test, "all": acc_all},
        "torch": torch.__version__,
    }, indent=1) + "\n")

    nb_path = out / "banknote.neuralbond.json"
    if not os.access(args.fpgaserve, os.X_OK):
        sys.exit(f"train.py: {args.fpgaserve} not found; run `make build` first "
                 "(it exports banknote.neuralbond.json)")
    subprocess.run([args.fpgaserve, "convert", str(onnx_path), "--to", "neuralbond",
                    "-o", str(nb_path)], check=True)
    print(f"train.py: wrote {onnx_path.name}, {nb_path.name}, banknote.meta.json, reference_outputs.json")


if __name__ == "__main__":
    main()
