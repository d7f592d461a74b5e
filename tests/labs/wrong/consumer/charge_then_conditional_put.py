# learner: "Charge, then record the key with a conditional put; if the key is already there, the charge was a duplicate."
# misses: concurrent
# hint: read 'not seen'
import json

ddb = wb.client("dynamodb")
keys = wb.resources.ensure_table("keys", partition_key="pk")


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        if "Item" in ddb.get_item(TableName=keys, Key={"pk": {"S": order["key"]}}, ConsistentRead=True):
            return
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])
        try:
            ddb.put_item(
                TableName=keys, Item={"pk": {"S": order["key"]}}, ConditionExpression="attribute_not_exists(pk)"
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass

    return handle
