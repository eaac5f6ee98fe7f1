"""Validation of pod volumes (exactly one source each), their files, and volume mounts."""

from __future__ import annotations

import posixpath

from apimachinery.api.core_v1 import (
    DownwardAPIVolumeFile,
    KeyToPath,
    ObjectFieldSelector,
    ResourceFieldSelector,
    Volume,
    VolumeMount,
)
from apimachinery.errors import FieldError
from apimachinery.validation.fields import dns_label, enum_value
from apimachinery.validation.meta import not_found
from apimachinery.validation.names import is_qualified_name
from apimachinery.validation.resources import validate_quantity

HOST_PATH_TYPES = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
]
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
# Pod fields a downwardAPI volume file may hold; resources a resourceFieldRef may name.
VOLUME_FIELD_PATHS = sorted(
    {"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"}
)
RESOURCE_FIELD_REFS = sorted(
    {f"{kind}.{res}" for kind in ("limits", "requests") for res in ("cpu", "memory", "ephemeral-storage")}
)


def _local_descending_path(target: str, field: str, *, non_reserved: bool = False) -> list[FieldError]:
    errors: list[FieldError] = []
    if posixpath.isabs(target):
        errors.append(FieldError.invalid(field, target, "must be a relative path"))
    if ".." in target.split("/"):
        errors.append(FieldError.invalid(field, target, "must not contain '..'"))
    if non_reserved and target.startswith(".."):
        errors.append(FieldError.invalid(field, target, "must not start with '..'"))
    return errors


def _file_mode(mode: int | None, field: str) -> list[FieldError]:
    if mode is not None and not 0 <= mode <= 0o777:
        return [FieldError.invalid(field, mode, FILE_MODE_MSG)]
    return []


def _key_to_paths(items: list[KeyToPath] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, item in enumerate(items or []):
        path = f"{field}[{i}]"
        if not item.key:
            errors.append(FieldError.required(f"{path}.key"))
        if not item.path:
            errors.append(FieldError.required(f"{path}.path"))
        errors.extend(_local_descending_path(item.path, f"{path}.path", non_reserved=True))
        errors.extend(_file_mode(item.mode, f"{path}.mode"))
    return errors


def validate_field_selector(ref: ObjectFieldSelector, field: str, supported: list[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not ref.api_version:
        errors.append(FieldError.required(f"{field}.apiVersion"))
    if not ref.field_path:
        errors.append(FieldError.required(f"{field}.fieldPath"))
        return errors
    base, bracket, rest = ref.field_path.partition("[")
    if bracket:
        # metadata.labels['key'] / metadata.annotations['key']
        if base not in ("metadata.labels", "metadata.annotations") or not rest.endswith("]"):
            errors.append(
                FieldError.invalid(f"{field}.fieldPath", ref.field_path, "does not support subscript")
            )
        else:
            key = rest[:-1].strip("'\"")
            key = key.lower() if base == "metadata.annotations" else key
            errors.extend(FieldError.invalid(f"{field}.fieldPath", key, m) for m in is_qualified_name(key))
    elif ref.field_path not in supported:
        errors.append(FieldError.not_supported(f"{field}.fieldPath", ref.field_path, supported))
    return errors


def validate_resource_field_selector(
    ref: ResourceFieldSelector, field: str, *, volume: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    if volume and not ref.container_name:
        errors.append(FieldError.required(f"{field}.containerName"))
    if not ref.resource:
        errors.append(FieldError.required(f"{field}.resource"))
    elif ref.resource not in RESOURCE_FIELD_REFS and not ref.resource.split(".", 1)[-1].startswith(
        "hugepages-"
    ):
        errors.append(FieldError.not_supported(f"{field}.resource", ref.resource, RESOURCE_FIELD_REFS))
    if ref.divisor is not None:
        errors.extend(validate_quantity(ref.divisor, f"{field}.divisor"))
    return errors


def _downward_api_files(items: list[DownwardAPIVolumeFile] | None, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, item in enumerate(items or []):
        path = f"{field}[{i}]"
        if not item.path:
            errors.append(FieldError.required(f"{path}.path"))
        errors.extend(_local_descending_path(item.path, f"{path}.path", non_reserved=True))
        errors.extend(_file_mode(item.mode, f"{path}.mode"))
        if item.field_ref is not None and item.resource_field_ref is not None:
            errors.append(
                FieldError.invalid(
                    path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"
                )
            )
        elif item.field_ref is not None:
            errors.extend(validate_field_selector(item.field_ref, f"{path}.fieldRef", VOLUME_FIELD_PATHS))
        elif item.resource_field_ref is not None:
            errors.extend(
                validate_resource_field_selector(
                    item.resource_field_ref, f"{path}.resourceFieldRef", volume=True
                )
            )
        else:
            errors.append(FieldError.required(path, "one of fieldRef and resourceFieldRef is required"))
    return errors


def _volume_source(v: Volume, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    count = 0

    def one(name: str) -> bool:
        """Count a source; a second one is reported on its own path."""
        nonlocal count
        count += 1
        if count > 1:
            errors.append(FieldError.forbidden(f"{path}.{name}", "may not specify more than 1 volume type"))
            return False
        return True

    if v.host_path is not None and one("hostPath"):
        if not v.host_path.path:
            errors.append(FieldError.required(f"{path}.hostPath.path"))
        if v.host_path.path and ".." in v.host_path.path.split("/"):
            errors.append(
                FieldError.invalid(f"{path}.hostPath.path", v.host_path.path, "must not contain '..'")
            )
        if v.host_path.type is not None and v.host_path.type not in HOST_PATH_TYPES:
            errors.append(
                FieldError.not_supported(f"{path}.hostPath.type", v.host_path.type, HOST_PATH_TYPES)
            )
    if v.empty_dir is not None and one("emptyDir"):
        medium = v.empty_dir.medium or ""
        if medium not in ("", "Memory") and not medium.startswith("HugePages"):
            errors.append(
                FieldError.not_supported(f"{path}.emptyDir.medium", medium, ["", "HugePages", "Memory"])
            )
        if v.empty_dir.size_limit is not None:
            errors.extend(validate_quantity(v.empty_dir.size_limit, f"{path}.emptyDir.sizeLimit"))
    if v.secret is not None and one("secret"):
        if not v.secret.secret_name:
            errors.append(FieldError.required(f"{path}.secret.secretName"))
        errors.extend(_file_mode(v.secret.default_mode, f"{path}.secret.defaultMode"))
        errors.extend(_key_to_paths(v.secret.items, f"{path}.secret.items"))
    if v.nfs is not None and one("nfs"):
        if not v.nfs.server:
            errors.append(FieldError.required(f"{path}.nfs.server"))
        if not v.nfs.path:
            errors.append(FieldError.required(f"{path}.nfs.path"))
        elif not posixpath.isabs(v.nfs.path):
            errors.append(FieldError.invalid(f"{path}.nfs.path", v.nfs.path, "must be an absolute path"))
    if v.persistent_volume_claim is not None and one("persistentVolumeClaim"):
        if not v.persistent_volume_claim.claim_name:
            errors.append(FieldError.required(f"{path}.persistentVolumeClaim.claimName"))
    if v.downward_api is not None and one("downwardAPI"):
        errors.extend(_file_mode(v.downward_api.default_mode, f"{path}.downwardAPI.defaultMode"))
        errors.extend(_downward_api_files(v.downward_api.items, f"{path}.downwardAPI"))
    if v.config_map is not None and one("configMap"):
        if not v.config_map.name:
            errors.append(FieldError.required(f"{path}.configMap.name"))
        errors.extend(_file_mode(v.config_map.default_mode, f"{path}.configMap.defaultMode"))
        errors.extend(_key_to_paths(v.config_map.items, f"{path}.configMap.items"))
    if v.projected is not None and one("projected"):
        errors.extend(_file_mode(v.projected.default_mode, f"{path}.projected.defaultMode"))
        for i, src in enumerate(v.projected.sources or []):
            spath = f"{path}.projected.sources[{i}]"
            kinds = [
                n
                for n, s in (
                    ("secret", src.secret),
                    ("downwardAPI", src.downward_api),
                    ("configMap", src.config_map),
                    ("serviceAccountToken", src.service_account_token),
                    ("clusterTrustBundle", src.cluster_trust_bundle),
                )
                if s is not None
            ]
            if len(kinds) > 1:
                errors.append(
                    FieldError.forbidden(f"{spath}.{kinds[1]}", "may not specify more than 1 volume type")
                )
            if src.secret is not None:
                errors.extend(_key_to_paths(src.secret.items, f"{spath}.secret.items"))
            if src.config_map is not None:
                errors.extend(_key_to_paths(src.config_map.items, f"{spath}.configMap.items"))
            if src.downward_api is not None:
                errors.extend(_downward_api_files(src.downward_api.items, f"{spath}.downwardAPI"))
            token = src.service_account_token
            if token is not None:
                if not token.path:
                    errors.append(FieldError.required(f"{spath}.serviceAccountToken.path"))
                if token.expiration_seconds is not None and token.expiration_seconds < 600:
                    errors.append(
                        FieldError.invalid(
                            f"{spath}.serviceAccountToken.expirationSeconds",
                            token.expiration_seconds,
                            "may not specify a duration less than 10 minutes",
                        )
                    )
    if count == 0:
        errors.append(FieldError.required(path, "must specify a volume type"))
    return errors


def validate_volumes(volumes: list[Volume] | None, field: str) -> tuple[set[str], list[FieldError]]:
    """Names (unique DNS-1123 labels) and sources (exactly one each); returns the valid names."""
    errors: list[FieldError] = []
    names: set[str] = set()
    for i, v in enumerate(volumes or []):
        path = f"{field}[{i}]"
        errors.extend(_volume_source(v, path))
        if not v.name:
            errors.append(FieldError.required(f"{path}.name"))
        else:
            errors.extend(dns_label(v.name, f"{path}.name"))
        if v.name in names:
            errors.append(FieldError.duplicate(f"{path}.name", v.name))
        names.add(v.name)
    return names, errors


def validate_volume_mounts(
    mounts: list[VolumeMount] | None, volumes: set[str], field: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, m in enumerate(mounts or []):
        path = f"{field}[{i}]"
        if not m.name:
            errors.append(FieldError.required(f"{path}.name"))
        if m.name not in volumes:
            errors.append(not_found(f"{path}.name", m.name))
        if not m.mount_path:
            errors.append(FieldError.required(f"{path}.mountPath"))
        if m.mount_path in seen:
            errors.append(FieldError.invalid(f"{path}.mountPath", m.mount_path, "must be unique"))
        seen.add(m.mount_path)
        if m.sub_path:
            errors.extend(_local_descending_path(m.sub_path, f"{path}.subPath"))
        if m.sub_path and m.sub_path_expr:
            errors.append(
                FieldError.invalid(
                    f"{path}.subPathExpr", m.sub_path_expr, "subPathExpr and subPath are mutually exclusive"
                )
            )
        if m.mount_propagation is not None:
            errors.extend(
                enum_value(
                    m.mount_propagation,
                    f"{path}.mountPropagation",
                    ["Bidirectional", "HostToContainer", "None"],
                )
            )
    return errors
