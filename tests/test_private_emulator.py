"""helpers.notebook.private_emulator: moto in the kernel with a movable clock; the notebook's backend is untouched."""

from __future__ import annotations

import pytest

from helpers.notebook import private_emulator


def depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_the_clock_crosses_the_fifo_window_and_the_backend_keeps_its_data(backend, monkeypatch) -> None:
    shared = backend.client("sqs")
    kept = shared.create_queue(QueueName="private-emulator-test-kept")["QueueUrl"]
    # Even with an endpoint configured (as under `make lab`), the private client stays in this process.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with private_emulator() as private:
        sqs = private.client("sqs")
        url = sqs.create_queue(QueueName="private-window.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        seen = []
        for wait in (0, 4 * 60 + 59, 2):
            private.tick(wait)
            sqs.send_message(QueueUrl=url, MessageBody="{}", MessageGroupId="g", MessageDeduplicationId="token")
            seen.append(depth(sqs, url))
        assert seen == [1, 1, 2]
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    names = [u.rsplit("/", 1)[1] for u in shared.list_queues().get("QueueUrls", [])]
    assert "private-emulator-test-kept" in names and "private-window.fifo" not in names
    shared.delete_queue(QueueUrl=kept)


def test_an_error_inside_the_block_still_cleans_up() -> None:
    with pytest.raises(RuntimeError), private_emulator() as private:
        private.client("sqs").create_queue(QueueName="private-error")
        raise RuntimeError("boom")
    with private_emulator() as private:
        assert "QueueUrls" not in private.client("sqs").list_queues(QueueNamePrefix="private-error")
