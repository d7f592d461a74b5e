# learner: "An order is always in some currency: ask for one, to be safe."
# misses: big_orders_held_out
# hint: price only
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"currency": [{"exists": True}], "price": [{"numeric": [">=", 100]}]}}},
}
