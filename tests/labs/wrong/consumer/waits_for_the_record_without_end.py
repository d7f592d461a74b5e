# learner: "When another worker has the key, wait until its record says done, then return: no message comes back."
# misses: drained
# hint: within 8 s
import json
import time

ddb = wb.client("dynamodb")
records = wb.resources.ensure_table("records", partition_key="pk")


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        key = {"pk": {"S": order["key"]}}
        try:
            ddb.put_item(
                TableName=records,
                Item={**key, "state": {"S": "running"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            while ddb.get_item(TableName=records, Key=key, ConsistentRead=True)["Item"]["state"]["S"] != "done":
                time.sleep(0.2)
            return
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])
        ddb.put_item(TableName=records, Item={**key, "state": {"S": "done"}})

    return handle
