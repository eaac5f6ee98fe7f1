#!/bin/sh
# Regenerate the Python stubs of runtime.proto (needs grpcio-tools: pip install grpcio-tools).
# The stubs are committed; run this after editing the .proto.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
python3 -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. nodeagent/cri/runtime.proto
# grpcio-tools emits an `import warnings` it only uses for its version check, which these stubs
# do not carry; drop it when nothing else uses it, so the committed stubs lint clean.
stubs=nodeagent/cri/runtime_pb2_grpc.py
if [ "$(grep -c 'warnings' "$stubs")" = 1 ]; then
  sed -i '/^import warnings$/d' "$stubs"
fi
