#!/usr/bin/python3
"""A V2 gRPC client for `fpgaserve serve`, using Python grpcio (Debian: python3-grpcio,
python3-grpc-tools). Generate the stubs from our proto first:

    /usr/bin/python3 -m grpc_tools.protoc -I proto --python_out=/tmp/stubs \
        --grpc_python_out=/tmp/stubs proto/grpc_service.proto
    PYTHONPATH=/tmp/stubs /usr/bin/python3 examples/grpc_client.py --target 127.0.0.1:8081

It checks the server is live and ready, reads the model metadata and classifies banknote
feature rows (variance, skewness, curtosis, entropy of the wavelet-transformed image).
"""
import argparse
import json
import sys

import grpc

import grpc_service_pb2 as pb
import grpc_service_pb2_grpc as pb_grpc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="127.0.0.1:8081")
    ap.add_argument("--model", default="banknote")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("features", nargs="*", type=float,
                    default=[3.6216, 8.6661, -2.8073, -0.44699])
    args = ap.parse_args()

    with grpc.insecure_channel(args.target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        if not stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live:
            sys.exit("server is not live")
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=args.model), timeout=10)
        width = meta.inputs[0].shape[-1]
        if len(args.features) % width:
            sys.exit(f"{len(args.features)} features; model {args.model} takes rows of {width}")
        rows = len(args.features) // width
        req = pb.ModelInferRequest(model_name=args.model, id="python-grpcio")
        tensor = req.inputs.add(name=meta.inputs[0].name, datatype="FP32", shape=[rows, width])
        tensor.contents.fp32_contents.extend(args.features)
        resp = stub.ModelInfer(req, timeout=30)

    outputs = {o.name: o for o in resp.outputs}
    probs_out = outputs[meta.outputs[0].name]
    n = probs_out.shape[1]
    flat = list(probs_out.contents.fp32_contents)
    result = {
        "model": resp.model_name,
        "id": resp.id,
        "probabilities": [flat[i * n:(i + 1) * n] for i in range(rows)],
        "class_index": list(outputs["class_index"].contents.int64_contents) if "class_index" in outputs else [],
        "device_cycles": resp.parameters["device_cycles"].uint64_param,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for i in range(rows):
            print(f"row {i}: probabilities {result['probabilities'][i]} class {result['class_index'][i] if result['class_index'] else '-'}")
        print(f"device cycles: {result['device_cycles']}")


if __name__ == "__main__":
    main()
