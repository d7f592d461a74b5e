# learner: "Prices have at most three decimals: anything above 99.999 is 100 or more."
# misses: big_orders_held_out
# hint: just under 100
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">", 99.999]}]}}},
}
