"""Install-free control of the local stack: Kafka, the registry, PostgreSQL, Redis, FerretDB."""

from leadstream.infra.config import InfraSettings
from leadstream.infra.errors import InfraError
from leadstream.infra.stack import ServerStatus, Stack

__all__ = ["InfraError", "InfraSettings", "ServerStatus", "Stack"]
