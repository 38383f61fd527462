"""MySQL and MariaDB for ahcore: a ``register_db_driver`` plugin on aiomysql."""
