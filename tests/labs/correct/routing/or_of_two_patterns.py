# learner: "Two alternatives, one per currency, with $or; the threshold as two numeric matches."
ORDERS = {"source": ["com.orders"], "detail-type": ["OrderCreated"]}

RULES = {
    "au-nz": {
        **ORDERS,
        "$or": [{"detail": {"data": {"currency": ["NZ"]}}}, {"detail": {"data": {"currency": ["AU"]}}}],
    },
    "big-orders": {**ORDERS, "detail": {"data": {"price": [{"numeric": ["=", 100]}, {"numeric": [">", 100]}]}}},
}
