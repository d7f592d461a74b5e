# learner: "Only the orders service sends OrderCreated on this bus: the source adds nothing."
# misses: au_nz_held_out, big_orders_held_out
# hint: another source
ORDERS = {"detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
