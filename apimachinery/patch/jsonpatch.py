"""RFC 6902 JSON patch (``application/json-patch+json``), as the API server applies it.

``kubectl rollout undo`` and the Python client's list-shaped patches send this format. Errors
follow the split Kubernetes makes: a patch that is not a list of well-formed operations is a
400 BadRequest; an operation that does not apply to this object (missing path, failed ``test``,
index out of range) is a 422.
"""

from __future__ import annotations

from typing import Any

from apimachinery.patch.mergepatch import PatchError, deep_copy, json_equal

# Kubernetes refuses larger patches with 413 RequestEntityTooLarge.
MAX_OPERATIONS = 10000
# "copy" doubles a document per operation; like Kubernetes (AccumulatedCopySizeLimit) we cap what
# all copies of one patch may add, at the request body limit, so a small patch cannot grow an
# object past what a client could have sent.
MAX_COPIED_BYTES = 3 * 1024 * 1024

_OPS = ("add", "remove", "replace", "move", "copy", "test")


def parse_pointer(pointer: str) -> list[str]:
    """Split an RFC 6901 JSON pointer into unescaped reference tokens (``""`` is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{pointer}": must be empty or start with "/"', 400)
    tokens = []
    for raw in pointer[1:].split("/"):
        i = raw.find("~")
        while i != -1:
            if i + 1 >= len(raw) or raw[i + 1] not in "01":
                raise PatchError(f'invalid JSON pointer "{pointer}": bad escape sequence in "{raw}"', 400)
            i = raw.find("~", i + 2)
        # ~1 first, then ~0, so that "~01" decodes to "~1" rather than "/".
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(token: str, length: int, *, for_add: bool, op: str, path: str) -> int:
    """The list index a token names; ``-`` (the end) only makes sense when adding."""
    if token == "-" and for_add:
        return length
    if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(
            f'{op} operation does not apply: invalid array index "{token}" in path "{path}"', 422
        )
    index = int(token)
    limit = length if for_add else length - 1
    if index > limit:
        raise PatchError(
            f'{op} operation does not apply: unable to access invalid index {index} in path "{path}"', 422
        )
    return index


def _parent(doc: Any, tokens: list[str], op: str, path: str) -> Any:
    """The container holding the last token of a path; every step before it must exist."""
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"', 422)
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), for_add=False, op=op, path=path)]
        else:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"', 422)
    if not isinstance(node, dict | list):
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"', 422)
    return node


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"', 422)
        return parent[last]
    return parent[_array_index(last, len(parent), for_add=False, op=op, path=path)]


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = parse_pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    else:
        parent.insert(_array_index(last, len(parent), for_add=True, op=op, path=path), value)
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> tuple[Any, Any]:
    """Remove the value at ``path``; returns the new document and the removed value."""
    tokens = parse_pointer(path)
    if not tokens:
        raise PatchError(f"{op} operation does not apply: cannot remove the whole document", 422)
    parent = _parent(doc, tokens, op, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}"', 422)
        return doc, parent.pop(last)
    return doc, parent.pop(_array_index(last, len(parent), for_add=False, op=op, path=path))


def _replace(doc: Any, path: str, value: Any) -> Any:
    """Replace an existing value in place (unlike add, the target must exist)."""
    tokens = parse_pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, "replace", path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'replace operation does not apply: doc is missing key: "{path}"', 422)
        parent[last] = value
    else:
        parent[_array_index(last, len(parent), for_add=False, op="replace", path=path)] = value
    return doc


def _field(operation: dict[str, Any], name: str, op: str) -> Any:
    if name not in operation:
        raise PatchError(f'invalid JSON patch: operation "{op}" is missing "{name}"', 400)
    return operation[name]


def _pointer_field(operation: dict[str, Any], name: str, op: str) -> str:
    value = _field(operation, name, op)
    if not isinstance(value, str):
        raise PatchError(f'invalid JSON patch: "{name}" of operation "{op}" must be a string', 400)
    parse_pointer(value)  # malformed pointers are a malformed patch (400), whatever the document
    return value


def json_size(value: Any) -> int:
    """About how many bytes ``value`` takes as JSON (iterative: the value may be deep)."""
    size = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            size += 2 + sum(len(k) + 4 for k in v)
            stack.extend(v.values())
        elif isinstance(v, list):
            size += 2 + len(v)
            stack.extend(v)
        else:
            size += len(v) + 2 if isinstance(v, str) else 5
    return size


def validate_operations(ops: Any) -> list[dict[str, Any]]:
    """Check the shape of a JSON patch before touching the document (all 400 errors)."""
    if not isinstance(ops, list):
        raise PatchError("invalid JSON patch: the patch must be a JSON array of operations", 400)
    if len(ops) > MAX_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {len(ops)}", 413
        )
    for operation in ops:
        if not isinstance(operation, dict):
            raise PatchError("invalid JSON patch: every operation must be a JSON object", 400)
        op = operation.get("op")
        if op not in _OPS:
            raise PatchError(f'invalid JSON patch: unknown operation "{op}"', 400)
        _pointer_field(operation, "path", op)
        if op in ("add", "replace", "test"):
            _field(operation, "value", op)
        if op in ("move", "copy"):
            _pointer_field(operation, "from", op)
    return ops


def apply_json_patch(original: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations in order; all or nothing, and neither argument is modified."""
    operations = validate_operations(ops)
    doc: Any = deep_copy(original)
    copied = 0
    for operation in operations:
        op = operation["op"]
        path = operation["path"]
        if op == "add":
            doc = _add(doc, path, deep_copy(operation["value"]))
        elif op == "remove":
            doc, _ = _remove(doc, path)
        elif op == "replace":
            doc = _replace(doc, path, deep_copy(operation["value"]))
        elif op == "move":
            source = operation["from"]
            if path != source and path.startswith(source + "/"):
                raise PatchError(
                    f'move operation does not apply: "from" {source} is a prefix of "path" {path}', 422
                )
            if path == source:
                _get(doc, source, op)
                continue
            doc, value = _remove(doc, source, op)
            doc = _add(doc, path, value, op)
        elif op == "copy":
            value = _get(doc, operation["from"], op)
            copied += json_size(value)
            if copied > MAX_COPIED_BYTES:
                raise PatchError(
                    f"copy operations of this patch would add more than {MAX_COPIED_BYTES} bytes", 422
                )
            value = deep_copy(value)
            doc = _add(doc, path, value, op)
        else:  # test
            if not json_equal(_get(doc, path, op), operation["value"]):
                raise PatchError(f"testing value {path} failed: test failed", 422)
    if not isinstance(doc, dict):
        raise PatchError("the patched document is not a JSON object", 422)
    return doc
