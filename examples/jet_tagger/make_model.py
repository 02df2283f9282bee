#!/usr/bin/env python3
"""Writes jet_tagger.onnx: the hls4ml jet-tagging architecture (16-64-32-32-5, ReLU, softmax)
with random weights from a fixed seed. It is a size benchmark for synthesis and fitting (F4),
not a trained tagger. Run with Debian's python3 (torch, onnx): /usr/bin/python3 make_model.py"""
import os
import sys

import torch

torch.manual_seed(2026)
model = torch.nn.Sequential(
    torch.nn.Linear(16, 64), torch.nn.ReLU(),
    torch.nn.Linear(64, 32), torch.nn.ReLU(),
    torch.nn.Linear(32, 32), torch.nn.ReLU(),
    torch.nn.Linear(32, 5), torch.nn.Softmax(dim=1),
)
with torch.no_grad():
    for m in model:
        if isinstance(m, torch.nn.Linear):
            bound = 1.0 / (m.in_features ** 0.5)
            m.weight.uniform_(-bound, bound)
            m.bias.uniform_(-bound, bound)
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "jet_tagger.onnx")
torch.onnx.export(model, torch.zeros(1, 16), out, input_names=["input"], output_names=["probabilities"],
                  dynamic_axes={"input": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=13)
print(f"wrote {out}")
