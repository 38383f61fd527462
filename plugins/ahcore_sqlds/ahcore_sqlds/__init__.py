"""``.sqlds`` data sources for ahcore: a SQL query described in JSON, served as data."""
