# learner: "Australasia is everything that is not US or GB."
# misses: au_nz_held_out
# hint: anything-but
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": [{"anything-but": ["US", "GB"]}]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
