"""Errors a user can fix. Anything else that rises is a bug and carries stage/shard notes."""


class WinnowError(Exception):
    """Base of every error that names what went wrong, where, and what to do about it."""


class ConfigError(WinnowError):
    """The configuration cannot be loaded or does not validate."""


class InputError(WinnowError):
    """The input cannot be found or read as a corpus."""


class ModelError(WinnowError):
    """A model file is missing or cannot be loaded."""


class StoreError(WinnowError):
    """The artifact store holds something it cannot trust or cannot be written."""


class ServerError(WinnowError):
    """A service Winnow starts for the user (the Prefect server) did not come up."""
