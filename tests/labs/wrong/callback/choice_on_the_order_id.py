# learner: "The order id says which worker it will meet: a Choice pays the slow one and cancels the others."
# misses: asked
# hint: without asking
def record(orders_table, status, **extra):
    item = {"order_id": {"S.$": "$.orderId"}, "status": {"S": status}, **extra}
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::dynamodb:putItem",
        "Parameters": {"TableName": orders_table, "Item": item},
        "ResultPath": None,
    }


def payment_workflow(queue_url, orders_table):
    states = {
        "Which worker": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.orderId", "StringMatches": "*-slow-*", "Next": "Payment captured"}],
            "Default": "Cancel the order",
        },
        "Payment captured": {**record(orders_table, "PAID"), "End": True},
        "Cancel the order": {**record(orders_table, "CANCELLED"), "End": True},
    }
    return {"StartAt": "Which worker", "States": states}
