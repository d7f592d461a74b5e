# learner: "A TimeoutSeconds a bit longer than the slowest payment is all the waiting I need."
# misses: dead_given_up, silent
# hint: HeartbeatSeconds
def record(orders_table, status, **extra):
    """A DynamoDB putItem task that writes the order's status (a compensation step when status is CANCELLED)."""
    item = {"order_id": {"S.$": "$.orderId"}, "status": {"S": status}, **extra}
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {"TableName": orders_table, "Item": item},
        "ResultPath": None,
    }


def payment_workflow(queue_url, orders_table):
    ask = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": queue_url,
            "MessageBody": {"orderId.$": "$.orderId", "amount.$": "$.amount", "taskToken.$": "$$.Task.Token"},
        },
        "ResultPath": "$.payment",
        "TimeoutSeconds": 9,  # longer than the 7 s job
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Cancel the order"}],
        "Next": "Payment captured",
    }
    states = {
        "Ask payments and wait": ask,
        "Payment captured": {**record(orders_table, "PAID"), "End": True},
        "Cancel the order": {
            **record(orders_table, "CANCELLED", reason={"S.$": "$.failure.Error"}),
            "Next": "Payment failed",
        },
        "Payment failed": {"Type": "Fail", "Error": "OrderCancelled", "Cause": "no payment: the order was cancelled"},
    }
    return {"StartAt": "Ask payments and wait", "States": states}
