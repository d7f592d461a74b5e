# learner: "The fingerprint is a SHA-256 of the body: the body is the payment, the path is always /charges."
# misses: payload_mismatch
# hint: method, path
import hashlib
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
        fp = hashlib.sha256(body).hexdigest()
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
