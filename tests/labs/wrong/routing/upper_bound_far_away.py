# learner: "Big orders are 100 and up; anything from 10000 is a different team's business."
# misses: big_orders_held_out
# hint: no upper bound
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100, "<", 10000]}]}}},
}
