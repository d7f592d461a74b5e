# learner: "AU and NZ are the currencies that start with A or N."
# misses: au_nz_held_out
# hint: starts like AU
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": [{"prefix": "A"}, {"prefix": "N"}]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
