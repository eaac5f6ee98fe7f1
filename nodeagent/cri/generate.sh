#!/bin/sh
# Regenerate the Python stubs of runtime.proto (needs grpcio-tools: pip install grpcio-tools).
# The stubs are committed; run this after editing the .proto.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
python3 -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. nodeagent/cri/runtime.proto
