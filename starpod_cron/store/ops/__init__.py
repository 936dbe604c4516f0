"""The store's operations, one transaction script each, written once for every dialect."""
