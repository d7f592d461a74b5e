# learner: "Everything the orders service sends under com.orders, its sub-systems too: a prefix on the source."
# misses: au_nz_held_out, big_orders_held_out
# hint: starts like com.orders
ORDERS = {"source": [{"prefix": "com.orders"}], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
