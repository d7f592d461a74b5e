# learner: "Catch exactly the two failures I expect, and end the cancelled order in a Succeed of its own."
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
        "HeartbeatSeconds": 2,
        "TimeoutSeconds": 15,
        "Catch": [
            {
                "ErrorEquals": ["States.Timeout", "PaymentDeclined"],
                "ResultPath": "$.failure",
                "Next": "Cancel the order",
            }
        ],
        "Next": "Payment captured",
    }
    states = {
        "Ask payments and wait": ask,
        "Payment captured": {**record(orders_table, "PAID"), "End": True},
        "Cancel the order": {
            **record(orders_table, "CANCELLED", reason={"S.$": "$.failure.Error"}),
            "End": True,
        },
    }
    return {"StartAt": "Ask payments and wait", "States": states}
