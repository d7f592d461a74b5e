# learner: "A bound of 100, in quotes like every other value."
# misses: accepted
# hint: a number
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", "100"]}]}}},
}
