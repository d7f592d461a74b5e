# learner: "Claim the key with a conditional put first; if the claim fails it is a duplicate, so skip it; then charge."
# misses: crash_before, ack_after_charge
# hint: at most once
import json

ddb = wb.client("dynamodb")
claims = wb.resources.ensure_table("claims", partition_key="pk")


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        try:
            ddb.put_item(
                TableName=claims, Item={"pk": {"S": order["key"]}}, ConditionExpression="attribute_not_exists(pk)"
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return  # someone has it: a duplicate
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])

    return handle
