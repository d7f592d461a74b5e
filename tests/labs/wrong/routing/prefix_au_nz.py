# learner: "A prefix match on AU and NZ catches them however the currency is written."
# misses: au_nz_held_out
# hint: only starts with AU
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": [{"prefix": "AU"}, {"prefix": "NZ"}]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
