"""Request bodies cannot redirect the upstream call or add headers or credentials to it."""

from __future__ import annotations

import pytest

from polyroute.api.validation import FORBIDDEN_FIELDS, validate
from polyroute.errors import InvalidRequest
from polyroute.kinds import EndpointKind

BODIES = {
    EndpointKind.CHAT: {"messages": [{"role": "user", "content": "x"}]},
    EndpointKind.COMPLETION: {"prompt": "x"},
    EndpointKind.EMBEDDING: {"input": "x"},
    EndpointKind.IMAGE: {"prompt": "x"},
}


def test_the_usual_spellings_are_forbidden() -> None:
    assert {
        "base_url",
        "api_base",
        "api_key",
        "extra_headers",
        "headers",
        "default_headers",
        "azure_endpoint",
    } <= FORBIDDEN_FIELDS


@pytest.mark.parametrize("kind", list(EndpointKind))
@pytest.mark.parametrize("field", sorted(FORBIDDEN_FIELDS))
def test_forbidden_field_is_a_400_naming_it(kind: EndpointKind, field: str) -> None:
    body = {**BODIES[kind], field: {"authorization": "Bearer x"}}
    with pytest.raises(InvalidRequest) as caught:
        validate(kind, body)
    assert caught.value.status == 400
    assert (caught.value.param, caught.value.code) == (field, "forbidden_field")
    assert "Bearer x" not in caught.value.message
