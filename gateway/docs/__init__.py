"""The OpenAPI document (/openapi.json) and the API docs page (/docs)."""
