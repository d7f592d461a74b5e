# learner: "One DynamoDB transaction writes the key (only if it is new) and the charge: both or neither."
import json

ddb = wb.client("dynamodb")
keys = wb.resources.ensure_table("keys", partition_key="pk")


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        claim = {
            "Put": {
                "TableName": keys,
                "Item": {"pk": {"S": order["key"]}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        charge = ledger.put_item_request(order["order_id"], order["amount"], by=worker, key=order["key"])
        try:
            ddb.transact_write_items(TransactItems=[claim, charge])
        except ddb.exceptions.TransactionCanceledException:
            return  # the key is there: this order was charged, in the same transaction

    return handle
