"""Where calls go: the backend (moto, LocalStack or AWS), what each backend does faithfully, and resources."""
