# learner: "Big orders are 100 and up; an order of 100000 or more is a typo, not a sale."
# misses: big_orders_held_out
# hint: no upper bound
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100, "<", 100000]}]}}},
}
