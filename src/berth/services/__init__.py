"""Use cases. Each opens its own transaction and works through the AuthzStore."""
