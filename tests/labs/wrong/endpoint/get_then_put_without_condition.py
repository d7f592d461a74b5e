# learner: "get_item tells me whether the key is known; if not, put_item a record, charge, and store the response."
# misses: burst
# hint: read 'no record'
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
        fingerprint = hashlib.sha256(method.encode() + path.encode() + body).hexdigest()
        item = ddb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
        if item is not None:
            if item["fingerprint"]["S"] != fingerprint:
                return HttpResponse(422, {}, b"the key was used for another request")
            if item["state"]["S"] == "running":
                return HttpResponse(409, {}, b"in progress")
            stored = json.loads(item["response"]["S"])
            return HttpResponse(stored["status"], stored["headers"], stored["body"].encode())
        record = {"pk": {"S": key}, "fingerprint": {"S": fingerprint}, "state": {"S": "running"}}
        ddb.put_item(TableName=table, Item=record)
        try:
            response = charge(request)
        except Exception:
            ddb.delete_item(TableName=table, Key={"pk": {"S": key}})
            return HttpResponse(503, {}, b"try again")
        stored = {"status": response.status, "headers": response.headers, "body": response.body.decode()}
        ddb.put_item(TableName=table, Item={**record, "state": {"S": "done"}, "response": {"S": json.dumps(stored)}})
        return response

    return serve
