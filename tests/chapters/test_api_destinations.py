"""chapters.api_destinations: notebook 11's scenarios, run on the backend, counted in the ledger."""

from __future__ import annotations

import secrets

import pytest

from helpers.aws.resources import Resources
from helpers.chapters import api_destinations as ch
from helpers.instruments.ledger import Ledger
from helpers.services import delivery as dl
from helpers.services.payments import PaymentsApi

PREFIX = "tapi"
HEADER = "x-api-key"


@pytest.fixture(scope="module")
def stack(backend):
    res = Resources(PREFIX, backend)
    res.teardown()
    ledger = Ledger(res)
    api_key = (HEADER, secrets.token_urlsafe(16))
    api = PaymentsApi(ledger, api_key=api_key).start()
    connection = dl.ensure_connection(res, "conn", api_key=api_key)
    destination = res.ensure_api_destination(
        "payments", connection_arn=connection, endpoint=f"{api.url}/charges", rate_limit_per_second=1
    )
    bus = res.ensure_bus("bus")
    dlq = res.ensure_queue("dlq")
    account, _ = res.account_region
    settings = dict(
        bus=bus,
        pattern={"account": [account]},
        api_destination_arn=destination,
        header_parameters={"Idempotency-Key": "$.detail.customID"},
        retry_policy=dl.RetryPolicy(maximum_retry_attempts=3),
        dead_letter_queue=dlq,
    )
    route = dl.ensure_route(res, "charges", **settings)
    demo = ch.Scenarios(backend, route, api, ledger, bus=bus, seed=11, tap_wait_s=5, api_key_header=HEADER)
    yield demo, settings, dlq, api_key
    api.stop()
    res.teardown()


def _statuses(dispatcher: dl.ApiDestinationDispatcher) -> list[int | None]:
    return [a.status for a in dispatcher.attempts]


def test_a_producer_retry_of_the_whole_event_is_a_422_and_a_dead_letter(stack):
    demo, _, dlq, _ = stack
    detail = demo.sample_event("published twice", "t-1", 25)
    first, second = demo.publish(detail), demo.publish(detail)
    delivered = demo.deliver(2)
    assert first != second and demo.published[detail["customID"]] == 2
    assert [(a.status, a.outcome) for a in delivered.attempts] == [(201, "delivered"), (422, "dead-lettered")]
    assert all(demo.key_of(a) == detail["customID"] for a in delivered.attempts)
    assert demo.charges_for(detail["customID"]) == 1
    [letter] = dl.read_dead_letters(demo.backend, dlq)
    assert letter["attributes"]["RETRY_ATTEMPTS"] == "0" and "EXHAUSTED_RETRY_CONDITION" not in letter["attributes"]
    bodies = [b for b in demo.bodies if b["detail"]["customID"] == detail["customID"]]
    assert len(bodies) == 2 and bodies[0]["id"] != bodies[1]["id"] and bodies[0]["detail"] == bodies[1]["detail"]
    table = demo.attempts_table(delivered)
    assert list(table["scenario"]) == ["published twice"] * 2 and table[HEADER].eq(dl.REDACTED).all()


def test_a_lost_response_is_retried_and_replayed(stack):
    demo, *_ = stack
    detail = demo.sample_event("response lost", "t-2", 12)
    demo.api.faults.lose_responses(1)
    demo.publish(detail)
    delivered = demo.deliver(1)
    assert _statuses(delivered) == [None, 201]
    seen = demo.requests_for(detail["customID"])
    assert list(seen["Idempotent-Replayed"]) == [False, True] and demo.charges_for(detail["customID"]) == 1
    assert "POST /charges [response lost] attempt 2" in demo.diagram(delivered).source


def test_a_timed_out_charge_finds_its_caller_gone_and_the_retries_replay_it(stack):
    demo, *_ = stack
    detail = demo.sample_event("slow charge", "t-3", 15)
    closed_before = demo.api.closed_by_caller
    demo.api.faults.delay_s = 1.5
    try:
        demo.publish(detail)
        delivered = demo.deliver(1, timeout=0.5, real_time=True)
    finally:
        demo.api.faults.clear()
    assert _statuses(delivered) == [None, 409, 201]
    assert delivered.attempts[0].error_code == dl.TIMEOUT_ERROR_CODE
    notes = [s.note for s in demo.served_for(detail["customID"])]
    assert notes == ["rejected: first request still in progress", "charged", "replayed the first response"]
    assert demo.api.closed_by_caller - closed_before == 1, "the charge's answer found the dispatcher gone"
    assert demo.charges_for(detail["customID"]) == 1


def test_the_direct_client_sees_each_answer_of_the_ietf_draft(stack):
    demo, _, _, api_key = stack
    client = ch.DirectClient(demo.api, api_key=api_key)
    key = demo.new_key("direct")
    charge = {"orderId": "t-4", "amount": 40}
    answers = [("no key", client.post(charge))]
    first, during = client.post_while_first_runs(charge, key, charge_s=0.5)
    answers += [("first", first), ("during", during), ("after", client.post(charge, key))]
    answers += [("other amount", client.post({"orderId": "t-4", "amount": 400}, key))]
    table = ch.answers_table(answers)
    assert list(table["status"]) == [400, 201, 409, 201, 422]
    assert list(table["Idempotent-Replayed"]) == ["", "", "", "true", ""]
    assert table.loc["during", "Retry-After"] == "1" and answers[3][1].body == first.body
    assert demo.charges_for(key) == 1


def test_sending_only_the_detail_makes_the_producers_retry_a_replay(stack):
    demo, settings, dlq, _ = stack
    demo.route = dl.ensure_route(demo.ledger.resources, "charges", **settings, input_path="$.detail")
    try:
        detail = demo.sample_event("fixed", "t-5", 25)
        demo.publish(detail)
        demo.publish(detail)
        delivered = demo.deliver(2)
        assert _statuses(delivered) == [201, 201] and demo.bodies[-2:] == [detail, detail]
        assert list(demo.requests_for(detail["customID"])["Idempotent-Replayed"]) == [False, True]
        assert dl.read_dead_letters(demo.backend, dlq) == [] and demo.charges_for(detail["customID"]) == 1
    finally:
        demo.route = dl.ensure_route(demo.ledger.resources, "charges", **settings)


def test_the_tally_counts_every_key_by_scenario(stack):
    demo, *_ = stack
    key = demo.new_key("tally")
    tally = demo.tally()
    assert tally.loc["tally"].to_dict() == {"PutEvents": 0, "requests with this key": 0, "charges": 0}
    assert set(tally.index) == set(demo.labels.values()) and key in demo.labels
    assert tally["charges"].sum() == demo.ledger.count() and demo.ledger.duplicates() == 0


def test_nothing_the_backend_sent_itself_was_charged(stack):
    demo, *_ = stack
    calls = demo.backend_calls()
    if demo.backend.supports("api_destination_http"):
        assert all(s.status == 400 for s in calls)
    else:
        assert calls == []
    assert all(c["idempotency_key"] in demo.labels for c in demo.ledger.charges())


def test_the_custom_bus_request_fits_the_model_and_the_checks_catch_what_botocore_does_not():
    detail = {"customID": "0b5f0f0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "message": ch.MESSAGE, "orderId": "o-1"}
    request = ch.custom_bus_put_events(detail)
    assert ch.check_custom_bus_request(request) == []
    assert request["Entries"][0]["SystemMetadata"] == {"DeduplicationId": detail["customID"]}
    assert ch.custom_bus_success_codes() == ["PUBLISHED", "DEDUPLICATED"]
    classic = {**request, "EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/payments"}
    assert any("not a Custom Event Bus ARN" in p for p in ch.check_custom_bus_request(classic))  # botocore accepts it
    blank = ch.custom_bus_put_events(dict(detail, customID="   "))
    assert any("DeduplicationId is blank" in p for p in ch.check_custom_bus_request(blank))
    untyped = {**request, "Entries": [{k: v for k, v in request["Entries"][0].items() if k != "DetailType"}]}
    assert any("DetailType" in p for p in ch.check_custom_bus_request(untyped))
