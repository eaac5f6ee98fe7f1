"""authentication.k8s.io/v1 TokenRequest: the body of the serviceaccounts/NAME/token subresource.

Like Binding it is never stored: the API server answers it with a freshly signed token.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from apimachinery.meta import KubeObject
from apimachinery.model import KubeModel

GROUP = "authentication.k8s.io"


class BoundObjectReference(KubeModel):
    """The object a token is bound to: the token stops working when that object goes."""

    kind: str | None = Field(None, description="Pod or Secret.")
    api_version: str | None = Field(None, description="API version of the object.")
    name: str | None = Field(None, description="Name of the object.")
    uid: str | None = Field(None, description="UID of the object.")


class TokenRequestSpec(KubeModel):
    """What the requested token is for and how long it lives."""

    audiences: list[str] = Field(default_factory=list, description="Intended audiences of the token.")
    expiration_seconds: int | None = Field(None, description="Requested lifetime of the token in seconds.")
    bound_object_ref: BoundObjectReference | None = Field(None, description="Object the token is bound to.")


class TokenRequestStatus(KubeModel):
    """The issued token."""

    token: str = Field("", description="The signed token.")
    expiration_timestamp: str | None = Field(None, description="When the token expires.")


class TokenRequest(KubeObject):
    """A request for a short-lived token of a service account."""

    API_VERSION: ClassVar[str] = f"{GROUP}/v1"
    KIND: ClassVar[str] = "TokenRequest"

    spec: TokenRequestSpec = Field(default_factory=TokenRequestSpec, description="The request.")
    status: TokenRequestStatus = Field(default_factory=TokenRequestStatus, description="The issued token.")
