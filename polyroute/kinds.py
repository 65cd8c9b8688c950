"""The kinds of request the gateway serves, and the upstream path each maps to."""

from enum import StrEnum


class EndpointKind(StrEnum):
    """What a request asks for; static routing and capability filters key on it."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"
    IMAGE = "image"


UPSTREAM_PATHS: dict[EndpointKind, str] = {
    EndpointKind.CHAT: "/chat/completions",
    EndpointKind.COMPLETION: "/completions",
    EndpointKind.EMBEDDING: "/embeddings",
    EndpointKind.IMAGE: "/images/generations",
}

ALL_KINDS: frozenset[EndpointKind] = frozenset(EndpointKind)
TEXT_KINDS: frozenset[EndpointKind] = frozenset({EndpointKind.CHAT, EndpointKind.COMPLETION})
