# learner: "The big orders in the table are 150, 100 and 250: list them."
# misses: big_orders_held_out
# hint: not a list
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [100, 150, 250]}}},
}
