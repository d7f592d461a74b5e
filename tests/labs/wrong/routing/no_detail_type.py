# learner: "Every event from the orders service is about an order in some currency."
# misses: au_nz
# hint: detail-type
ORDERS = {"source": ["com.orders"]}

RULES = {
    "au-nz": {**ORDERS, "detail": {"data": {"currency": ["AU", "NZ"]}}},
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": [">=", 100]}]}}},
}
