# learner: "Every attempt goes to an audit queue first; then the seen-table check, the put and the charge."
# misses: concurrent
# hint: carry no condition
import json

ddb = wb.client("dynamodb")
sqs = wb.client("sqs")
seen = wb.resources.ensure_table("seen", partition_key="pk")
audit = wb.resources.ensure_queue("audit").url


def make_consumer(worker):
    def handle(message):
        order = json.loads(message["Body"])
        sqs.send_message(QueueUrl=audit, MessageBody=json.dumps({"worker": worker, "order": order["order_id"]}))
        key = {"pk": {"S": order["key"]}}
        if "Item" in ddb.get_item(TableName=seen, Key=key, ConsistentRead=True):
            return
        ddb.put_item(TableName=seen, Item=key)
        ledger.charge(order["order_id"], order["amount"], by=worker, key=order["key"])

    return handle
