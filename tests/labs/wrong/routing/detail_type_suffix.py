# learner: "The rules are for new orders: any event whose detail-type ends in Created, however it is versioned."
# misses: au_nz_held_out, big_orders_held_out
# hint: ends like OrderCreated
ORDERS = {"source": ["com.orders"], "detail-type": [{"suffix": "Created"}]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
