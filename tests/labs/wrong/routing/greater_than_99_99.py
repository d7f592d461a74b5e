# learner: "Above 99.99 is 100 or more: prices have two decimals."
# misses: big_orders_held_out
# hint: 99.995
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">", 99.99]}]}}},
}
