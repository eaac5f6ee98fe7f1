"""The three patch formats the API server accepts, and the patches kubectl computes.

* :func:`apply_merge_patch`: RFC 7386 (``application/merge-patch+json``);
* :func:`apply_json_patch`: RFC 6902 (``application/json-patch+json``);
* :func:`apply_strategic_merge_patch`: Kubernetes' strategic merge patch
  (``application/strategic-merge-patch+json``), driven by the models' patch metadata;
* :func:`create_three_way_merge_patch` / :func:`two_way_merge_patch`: what ``kubectl apply`` and
  ``kubectl edit`` send.

All of them work on decoded JSON (dicts, lists, scalars), never mutate their inputs and report
problems as :class:`PatchError`, whose message and ``code`` are what the API server answers.
"""

from apimachinery.patch.jsonpatch import apply_json_patch
from apimachinery.patch.mergepatch import PatchError, apply_merge_patch
from apimachinery.patch.strategic import (
    apply_strategic_merge_patch,
    create_three_way_merge_patch,
    two_way_merge_patch,
)

__all__ = [
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_three_way_merge_patch",
    "two_way_merge_patch",
]
