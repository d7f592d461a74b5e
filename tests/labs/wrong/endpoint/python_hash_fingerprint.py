# learner: "The fingerprint is Python's hash() of method, path and body: fast, and the same for the same request."
# misses: second_instance
# hint: salted per process

import json

from helpers.idempotency import HttpRequest, HttpResponse

ddb = wb.client("dynamodb")
table = wb.resources.ensure_table("keys", partition_key="pk")


def make_endpoint(charge):
    def serve(method, path, headers, body):
        request = HttpRequest(method, path, headers, body)
        key = request.header("Idempotency-Key")
        if key is None:
            return HttpResponse(400, {}, b"Idempotency-Key is missing")
        fp = str(hash((method, path, body)))
        record = {"pk": {"S": key}, "fingerprint": {"S": fp}, "state": {"S": "running"}}
        try:
            ddb.put_item(TableName=table, Item=record, ConditionExpression="attribute_not_exists(pk)")
        except ddb.exceptions.ConditionalCheckFailedException:
            item = ddb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item", {})
            if item.get("fingerprint", {}).get("S") != fp:
                return HttpResponse(422, {}, b"the key was used for another request")
            if item.get("state", {}).get("S") != "done":
                return HttpResponse(409, {"Retry-After": "1"}, b"in progress")
            stored = json.loads(item["response"]["S"])
            return HttpResponse(stored["status"], stored["headers"], stored["body"].encode())
        try:
            response = charge(request)
        except Exception:
            ddb.delete_item(TableName=table, Key={"pk": {"S": key}})
            return HttpResponse(503, {"Retry-After": "1"}, b"retry")
        stored = {"status": response.status, "headers": response.headers, "body": response.body.decode()}
        ddb.put_item(TableName=table, Item={**record, "state": {"S": "done"}, "response": {"S": json.dumps(stored)}})
        return response

    return serve
