"""The one storage core: schema, engines and transactions, dialect differences, migrations."""
