# learner: "A DynamoDB table of keys: get_item to see whether the key is there, put_item to remember it, then charge."
# misses: concurrent
# hint: carry no condition
import json

ddb = wb.client("dynamodb")
seen_table = wb.resources.ensure_table("seen", partition_key="pk")


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        key = {"pk": {"S": order["key"]}}
        if "Item" in ddb.get_item(TableName=seen_table, Key=key, ConsistentRead=True):
            return
        ddb.put_item(TableName=seen_table, Item=key)
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])

    return handle
