# learner: "Neither team wants OrderShipped or OrderCancelled: anything but those two."
# misses: au_nz_held_out, big_orders_held_out
# hint: anything-but
ORDERS = {"source": ["com.orders"], "detail-type": [{"anything-but": ["OrderShipped", "OrderCancelled"]}]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
