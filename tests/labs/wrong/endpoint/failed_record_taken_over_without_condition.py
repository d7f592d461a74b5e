# learner: "A failed charge marks the record 'failed'; a retry that finds 'failed' takes the record over and charges."
# misses: failed_charge
# hint: took the key over
import hashlib
import json

from helpers.idempotency import HttpRequest, HttpResponse

ddb = wb.client("dynamodb")
table = wb.resources.ensure_table("keys", partition_key="pk")


def fingerprint_of(request):
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b" " + request.body).hexdigest()


def make_endpoint(charge):
    def serve(method, path, headers, body):
        request = HttpRequest(method, path, headers, body)
        key = request.header("Idempotency-Key")  # HTTP header names are case-insensitive
        if key is None:
            return HttpResponse(400, {}, b"Idempotency-Key is missing")
        record = {"pk": {"S": key}, "fingerprint": {"S": fingerprint_of(request)}, "state": {"S": "running"}}
        try:
            ddb.put_item(TableName=table, Item=record, ConditionExpression="attribute_not_exists(pk)")
        except ddb.exceptions.ConditionalCheckFailedException:
            item = ddb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item", {})
            if item.get("fingerprint", {}).get("S") != record["fingerprint"]["S"]:
                return HttpResponse(422, {}, b"the key was used for another request")
            state = item.get("state", {}).get("S")
            if state == "failed":
                ddb.put_item(TableName=table, Item=record)  # the last attempt failed: this retry takes the key over
            elif state != "done":
                return HttpResponse(409, {"Retry-After": "1"}, b"in progress")
            else:
                stored = json.loads(item["response"]["S"])
                return HttpResponse(stored["status"], stored["headers"], stored["body"].encode())
        try:
            response = charge(request)
        except Exception:
            ddb.put_item(TableName=table, Item={**record, "state": {"S": "failed"}})
            return HttpResponse(503, {"Retry-After": "1"}, b"the payment did not go through; retry with the same key")
        stored = {"status": response.status, "headers": response.headers, "body": response.body.decode()}
        ddb.put_item(TableName=table, Item={**record, "state": {"S": "done"}, "response": {"S": json.dumps(stored)}})
        return response

    return serve
