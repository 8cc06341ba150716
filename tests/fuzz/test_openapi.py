"""Every operation of every service's OpenAPI, fuzzed: no 5xx, and every response matches
the schema the service documents for it (conftest.py has the services and the knobs)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.fuzz.conftest import EXAMPLES, RANDOM, FuzzTarget

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def aim_at_seeded(case: Any, known: dict[str, str]) -> None:
    """Name seeded entities in the query and the JSON body, where a field of that name is."""
    for fields in (case.query, case.body):
        if isinstance(fields, dict):
            for name in fields.keys() & known.keys():
                fields[name] = known[name]


def test_no_server_errors_and_responses_match_their_schemas(
    fuzz_target: FuzzTarget, fuzz_operation: str
) -> None:
    operation = fuzz_target.schema.find_operation_by_label(fuzz_operation)
    assert operation is not None, fuzz_operation
    # Valid requests reach the business rules, invalid ones the validation and error paths.
    # Random ids find nothing, so half the cases name seeded entities in the path, and half
    # in the query and body: else nearly every request would end in a 404.
    names = {parameter.name for parameter in operation.path_parameters}
    known = {name: value for name, value in fuzz_target.known.items() if name in names}
    strategies = [operation.as_strategy(mode) for mode in MODES]
    if known:
        strategies += [operation.as_strategy(mode, path_parameters=known) for mode in MODES]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=st.one_of(strategies), aim=st.booleans())
    def fuzz(case: Any, aim: bool) -> None:
        if aim:
            aim_at_seeded(case, fuzz_target.known)
        response = case.call(headers=fuzz_target.headers)
        fuzz_target.count(response.status_code)
        case.validate_response(response, checks=CHECKS)

    fuzz()
