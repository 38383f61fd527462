"""PostgreSQL for ahcore: a ``register_db_driver`` plugin on psycopg 3 and psycopg_pool."""
